package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/grantkeeper/grantkeeper/internal/credentials"
	"github.com/grantkeeper/grantkeeper/internal/risc"
	"github.com/grantkeeper/grantkeeper/internal/tokenclient"
)

// riscOptions are the flags of `kubectl grantkeeper risc ...`.
type riscOptions struct {
	keyFile, streamAPI, endpoint, state string
	timeout                             time.Duration
}

func newRiscCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &riscOptions{}
	cmd := &cobra.Command{
		Use:   "risc",
		Short: "Configure Google's Cross-Account Protection (RISC) event stream for grantkeeper's receiver",
	}
	cmd.PersistentFlags().StringVar(&o.keyFile, "service-account-key", "", "JSON key of a service account holding roles/riscconfigs.admin in the OAuth clients' project.")
	cmd.PersistentFlags().StringVar(&o.streamAPI, "stream-api", risc.DefaultStreamAPI, "Google's RISC stream API (override for tests).")
	cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 30*time.Second, "Timeout of the request to Google.")
	_ = cmd.MarkPersistentFlagRequired("service-account-key")

	register := &cobra.Command{
		Use:   "register --endpoint https://HOST/risc --service-account-key key.json",
		Short: "Point the project's event stream at grantkeeper's receiver and request every event type it acts on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateEndpoint(o.endpoint); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			if err := c.Update(ctx, o.endpoint); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Stream configured: Google delivers %d event types to %s\n", len(risc.EventTypes), o.endpoint)
			fmt.Fprintf(streams.Out, "Check delivery with: kubectl grantkeeper risc verify --service-account-key %s\n", o.keyFile)
			return nil
		},
	}
	register.Flags().StringVar(&o.endpoint, "endpoint", "", "The receiver's public URL: https, on one of the project's authorized domains, path /risc.")
	_ = register.MarkFlagRequired("endpoint")

	verify := &cobra.Command{
		Use:   "verify --service-account-key key.json",
		Short: "Ask Google to send a verification event to the configured receiver",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			state := o.state
			if state == "" {
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				state = "grantkeeper-" + hex.EncodeToString(b)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			if err := c.Verify(ctx, state); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Google accepted the request; a verification event with state %q is on its way.\n", state)
			fmt.Fprintln(streams.Out, `The receiver counts it in grantkeeper_security_events_total{type="verification",result="ignored"}.`)
			return nil
		},
	}
	verify.Flags().StringVar(&o.state, "state", "", "State to carry in the verification event (default: random).")
	cmd.AddCommand(register, verify)
	return cmd
}

func (o *riscOptions) client() (*risc.StreamClient, error) {
	raw, err := os.ReadFile(o.keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading --service-account-key: %w", err)
	}
	key, p := credentials.ParseServiceAccountKey(o.keyFile, map[string][]byte{"key": raw}, "key")
	if p != nil {
		return nil, fmt.Errorf("--service-account-key: %s", p.Message)
	}
	if err := tokenclient.ValidateURL(o.streamAPI); err != nil {
		return nil, fmt.Errorf("--stream-api: %w", err)
	}
	return &risc.StreamClient{BaseURL: o.streamAPI, HTTP: tokenclient.NewHTTPClient(o.timeout), Key: key}, nil
}

// validateEndpoint: Google delivers only to https URLs (loopback http is allowed for local fakes).
func validateEndpoint(raw string) error {
	if err := tokenclient.ValidateURL(raw); err != nil {
		return fmt.Errorf("--endpoint: %w (Google delivers only to https URLs on the project's authorized domains)", err)
	}
	u, _ := url.Parse(raw)
	if !strings.HasSuffix(u.Path, risc.Path) {
		return fmt.Errorf("--endpoint %q: the receiver's path is %s (for example https://grantkeeper.example.com%s)", raw, risc.Path, risc.Path)
	}
	return nil
}
