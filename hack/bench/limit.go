package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
	"github.com/grantkeeper/grantkeeper/internal/derivedsecret"
	"github.com/grantkeeper/grantkeeper/internal/schedule"
)

// limitNamespace holds the objects of the limit measurement; nothing else uses it.
const limitNamespace = "bench-limit"

// The calls a refresh makes to the API server, as the limit loop can make them.
const (
	callGet   = "get"   // a live GET of the refresh-token Secret
	callPut   = "put"   // a PUT of the derived Secret with the new token
	callPatch = "patch" // a merge PATCH of the grant's status
	// callStatus is a PUT of the grant's status subresource (the whole grant, without
	// managedFields, as a cache holds it).
	callStatus = "status"
)

// refreshCalls are the calls one refresh of a user grant makes today, in order: the refresh
// token comes from the record of its Secret's version (no live GET), the status is a PUT
// (BENCH_LIMIT_CALLS=get,put,patch is what b571b35 and earlier made).
var refreshCalls = []string{callPut, callStatus}

// limitConfig is what the limit loop does: which calls per refresh, with how many workers,
// for how long, over how many grant-shaped object sets.
type limitConfig struct {
	Calls    []string      `json:"calls"`
	Workers  int           `json:"workers"`
	Duration time.Duration `json:"duration_ns"`
	Objects  int           `json:"objects"`
	// Namespace holds the loop's objects (limitNamespace unless comparing call sets).
	Namespace string `json:"namespace"`
	// Kind is the grants' kind: the run's (each kind's CRD validates its own writes).
	Kind grantKind `json:"kind"`
}

// limitFigures is what the limit loop measured.
type limitFigures struct {
	Config             limitConfig `json:"config"`
	Refreshes          int64       `json:"refreshes"`
	Errors             int64       `json:"errors"`
	FirstError         string      `json:"first_error,omitempty"`
	Seconds            float64     `json:"seconds"`
	PerSecond          float64     `json:"refreshes_per_second"`
	APIServerCPUMillis float64     `json:"kube_apiserver_cpu_ms_per_refresh"`
	EtcdCPUMillis      float64     `json:"etcd_cpu_ms_per_refresh"`
	APIServerProfile   string      `json:"kube_apiserver_cpu_profile,omitempty"`
}

// parseCalls reads BENCH_LIMIT_CALLS: a comma-separated subset of get, put, patch and
// status, in any order, each at most once. Empty means the calls today's refresh makes.
func parseCalls(s string, def []string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return def, nil
	}
	var calls []string
	for _, c := range strings.Split(s, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		switch c {
		case callGet, callPut, callPatch, callStatus:
		default:
			return nil, fmt.Errorf("BENCH_LIMIT_CALLS: %q is not one of get, put, patch, status", c)
		}
		if slices.Contains(calls, c) {
			return nil, fmt.Errorf("BENCH_LIMIT_CALLS: %q given twice", c)
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// managerWorkers is the manager's --max-concurrent-reconciles among its extra arguments
// (the last one wins, as with Go's flag package), or def.
func managerWorkers(args []string, def int) int {
	n := def
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == args[i] {
			continue // not a flag
		}
		name, value, hasValue := strings.Cut(a, "=")
		if name != "max-concurrent-reconciles" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		if v, err := strconv.Atoi(value); err == nil && v > 0 {
			n = v
		}
	}
	return n
}

// demandPerSecond is the refreshes a second n grants with tokens of the given lifetime ask
// for in the steady state, by the documented schedule: each token is replaced at its
// refresh time, a third of the lifetime before expiry less a jitter of up to a tenth of
// that (a twentieth on average).
func demandPerSecond(n int, lifetime time.Duration) float64 {
	if n <= 0 || lifetime <= 0 {
		return 0
	}
	issued := time.Unix(0, 0)
	before := schedule.RefreshBefore(issued, issued.Add(lifetime), 0)
	interval := lifetime - before - before/20
	return float64(n) / interval.Seconds()
}

// limitVerdict is the line a run prints first: whether what it asks for is within what the
// API server sustains for a refresh's calls on this host. A missed refresh reads differently
// in each case.
func limitVerdict(demand, limit float64) string {
	switch {
	case limit <= 0:
		return "LIMIT UNKNOWN: the limit loop completed no refresh; read missed refreshes with care"
	case demand > limit:
		return fmt.Sprintf("OVER THE LIMIT: this run asks for %.0f refreshes a second, more than the %.0f a second the API server sustains for a refresh's calls on this host (%.2f of it): refreshes will be missed whatever grantkeeper does",
			demand, limit, demand/limit)
	case demand > 0.8*limit:
		return fmt.Sprintf("NEAR THE LIMIT: this run asks for %.0f refreshes a second, %.2f of the %.0f a second the API server sustains for a refresh's calls on this host",
			demand, demand/limit, limit)
	}
	return fmt.Sprintf("within the limit: this run asks for %.0f refreshes a second, %.2f of the %.0f a second the API server sustains for a refresh's calls on this host",
		demand, demand/limit, limit)
}

// secretMetadata is the manager's metadata-only watch of a namespace's Secrets.
var secretMetadata = func() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}()

// limitObjects are one grant-shaped set: the refresh-token Secret, the derived Secret and
// the grant, as the manager has them after a refresh.
type limitObjects struct {
	refreshToken string
	derived      *corev1.Secret
	grant        string
	status       oauthv1alpha1.GrantStatus
	obj          *unstructured.Unstructured // the grant as last written, for a status PUT
	mu           sync.Mutex                 // one refresh at a time per set
}

// measureLimit runs, before any grant exists, a plain client-go loop at the manager's
// concurrency that makes exactly the API calls a refresh makes, on objects shaped like the
// manager's, with watches like the manager's open on them; it reports how many of these
// refreshes a second the API server sustains and its CPU per refresh. cfg is the manager's
// own kubeconfig (its ServiceAccount, so RBAC is evaluated as for the manager).
func measureLimit(ctx context.Context, cfg, adminCfg *rest.Config, admin client.Client, scheme *runtime.Scheme, lc limitConfig, dir string) (limitFigures, error) {
	out := limitFigures{Config: lc}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lc.Namespace}}); err != nil {
		return out, err
	}
	sets := make([]*limitObjects, lc.Objects)
	now := time.Now().UTC().Truncate(time.Second)
	var setErr error
	var errMu sync.Mutex
	parallel(lc.Objects, 16, func(i int) error {
		o, err := createLimitObjects(ctx, admin, scheme, lc.Kind, lc.Namespace, i, now)
		if err != nil {
			errMu.Lock()
			setErr = err
			errMu.Unlock()
			return err
		}
		sets[i] = o
		return nil
	})
	if setErr != nil {
		return out, setErr
	}

	// Watches like the manager's (grants, its derived Secrets by label, every Secret's
	// metadata in the namespace): each write is fanned out to them as in a real run.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	sel := labels.SelectorFromSet(labels.Set{oauthv1alpha1.ManagedByLabel: oauthv1alpha1.ManagedByValue})
	informers, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{lc.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: sel}}})
	if err != nil {
		return out, err
	}
	for _, o := range []client.Object{lc.Kind.empty(), &corev1.Secret{}, secretMetadata} {
		if _, err := informers.GetInformer(watchCtx, o); err != nil {
			return out, err
		}
	}
	go func() { _ = informers.Start(watchCtx) }()
	informers.WaitForCacheSync(watchCtx)

	// Secrets in protobuf, as the manager's client speaks it for built-in types; the grant
	// in JSON, the only encoding custom resources have.
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pcfg.QPS, pcfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return out, err
	}
	jcfg := rest.CopyConfig(cfg)
	jcfg.QPS, jcfg.Burst = 1000, 2000
	dyn, err := dynamic.NewForConfig(jcfg)
	if err != nil {
		return out, err
	}
	grants := dyn.Resource(oauthv1alpha1.GroupVersion.WithResource(lc.Kind.resource())).Namespace(lc.Namespace)
	secrets := cs.CoreV1().Secrets(lc.Namespace)

	refresh := func(o *limitObjects, n int64) error {
		o.mu.Lock()
		defer o.mu.Unlock()
		at := time.Now().UTC().Truncate(time.Second)
		for _, call := range lc.Calls {
			switch call {
			case callGet:
				if _, err := secrets.Get(ctx, o.refreshToken, metav1.GetOptions{}); err != nil {
					return err
				}
			case callPut:
				s := o.derived.DeepCopy()
				derivedsecret.Apply(s, o.grant, derivedsecret.Token{AccessToken: fmt.Sprintf("ya29.limit-%d-%032d", n, n), Expiry: at.Add(time.Hour), RefreshedAt: at})
				u, err := secrets.Update(ctx, s, metav1.UpdateOptions{})
				if err != nil {
					return err
				}
				o.derived = u
			case callPatch:
				next := refreshedStatus(o.status, o.grant, at)
				patch, err := statusMergePatch(o.status, next)
				if err != nil {
					return err
				}
				if _, err := grants.Patch(ctx, o.grant, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
					return err
				}
				o.status = next
			case callStatus:
				next := refreshedStatus(o.status, o.grant, at)
				st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&next)
				if err != nil {
					return err
				}
				u := o.obj.DeepCopy()
				u.Object["status"] = st
				u.SetManagedFields(nil)
				w, err := grants.UpdateStatus(ctx, u, metav1.UpdateOptions{})
				if err != nil {
					return err
				}
				o.obj, o.status = w, next
			}
		}
		return nil
	}

	procs := stackProcs()
	cpu0 := cpuOf(procs, nil)
	var done, failed atomic.Int64
	var firstErr atomic.Value
	runCtx, stop := context.WithTimeout(ctx, lc.Duration)
	defer stop()
	profile := make(chan string, 1)
	go func() {
		// The middle third, as the window's profile.
		select {
		case <-time.After(lc.Duration / 3):
			profile <- saveAPIServerProfileAs(ctx, adminCfg, lc.Duration/3, dir, "kube-apiserver-cpu-"+lc.Namespace+".pprof")
		case <-runCtx.Done():
			profile <- ""
		}
	}()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range lc.Workers {
		wg.Go(func() {
			for runCtx.Err() == nil {
				n := next.Add(1)
				if err := refresh(sets[int(n)%len(sets)], n); err != nil {
					if runCtx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuOf(procs, nil).since(cpu0)
	out.APIServerProfile = <-profile
	out.Refreshes, out.Errors, out.Seconds = done.Load(), failed.Load(), elapsed.Seconds()
	if e, ok := firstErr.Load().(string); ok {
		out.FirstError = e
	}
	if out.Refreshes > 0 {
		out.PerSecond = float64(out.Refreshes) / elapsed.Seconds()
		out.APIServerCPUMillis = cpu["kube-apiserver"] * 1000 / float64(out.Refreshes)
		out.EtcdCPUMillis = cpu["etcd"] * 1000 / float64(out.Refreshes)
	}
	stopWatch()

	// Leave nothing behind for the manager to find.
	if err := admin.DeleteAllOf(ctx, lc.Kind.empty(), client.InNamespace(lc.Namespace)); err != nil {
		return out, err
	}
	return out, admin.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(lc.Namespace))
}

// createLimitObjects creates set i: a refresh-token Secret, a grant with the status of a
// grant just refreshed, and its derived Secret owned by the grant.
func createLimitObjects(ctx context.Context, c client.Client, scheme *runtime.Scheme, kind grantKind, ns string, i int, now time.Time) (*limitObjects, error) {
	name := fmt.Sprintf("l%05d", i)
	rt := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-rt", Namespace: ns},
		StringData: map[string]string{"refresh_token": fmt.Sprintf("1//limit-%05d-%064d", i, i)}}
	if err := c.Create(ctx, rt); err != nil {
		return nil, err
	}
	g := kind.grant(ns, name)
	if err := c.Create(ctx, g); err != nil {
		return nil, err
	}
	*g.GrantStatus() = refreshedStatus(oauthv1alpha1.GrantStatus{}, name, now)
	if err := c.Status().Update(ctx, g); err != nil {
		return nil, err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: g.TargetSecretName(), Namespace: ns}}
	derivedsecret.Apply(s, name, derivedsecret.Token{AccessToken: "ya29.limit-initial", Expiry: now.Add(time.Hour), RefreshedAt: now})
	if err := controllerutil.SetControllerReference(g, s, scheme); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, s); err != nil {
		return nil, err
	}
	g.SetManagedFields(nil)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(g)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{Object: u}
	obj.SetGroupVersionKind(oauthv1alpha1.GroupVersion.WithKind(string(kind)))
	return &limitObjects{refreshToken: rt.Name, derived: s, grant: name, status: *g.GrantStatus(), obj: obj}, nil
}

// refreshedStatus is the status the manager records after refreshing a user grant's token at
// at (the shape of plan.Record's: Ready and Revoked conditions, the token's times, the
// granted scopes, the inputs' fingerprint).
func refreshedStatus(prev oauthv1alpha1.GrantStatus, grant string, at time.Time) oauthv1alpha1.GrantStatus {
	st := *prev.DeepCopy()
	expiry, refresh := at.Add(time.Hour), at.Add(40*time.Minute)
	st.ObservedGeneration = 1
	st.AccessTokenSecretName = grant + "-access-token"
	st.ClientID = clientID
	st.ExpiresAt, st.RefreshTime, st.LastRefreshTime = &metav1.Time{Time: expiry}, &metav1.Time{Time: refresh}, &metav1.Time{Time: at}
	st.GrantedScopes = []string{"https://www.googleapis.com/auth/analytics.readonly"}
	st.InputsFingerprint = "ef97bad137845b72"
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionRevoked, Status: metav1.ConditionFalse, ObservedGeneration: 1,
		Reason: "RefreshSucceeded", Message: "The token endpoint accepted the refresh token.", LastTransitionTime: metav1.Time{Time: at}})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: oauthv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1,
		Reason: "TokenValid", LastTransitionTime: metav1.Time{Time: at},
		Message: fmt.Sprintf("Secret %q holds an access token valid until %s. Next refresh at %s.", st.AccessTokenSecretName, expiry.Format(time.RFC3339), refresh.Format(time.RFC3339))})
	return st
}

// statusMergePatch is the JSON merge patch from one status to the next, as controller-runtime's
// client.MergeFrom computes it for the manager.
func statusMergePatch(before, after oauthv1alpha1.GrantStatus) ([]byte, error) {
	b := &oauthv1alpha1.GoogleOAuthGrant{Status: before}
	a := &oauthv1alpha1.GoogleOAuthGrant{Status: after}
	return client.MergeFrom(b).Data(a)
}

// reportLimit prints the limit's figures.
func reportLimit(l limitFigures) string {
	b, _ := json.Marshal(l.Config.Calls)
	msg := fmt.Sprintf("limit: %.0f refreshes a second (%d in %.1fs, %d errors; calls %s, %d workers, %d object sets), kube-apiserver %.2f ms and etcd %.2f ms of CPU per refresh",
		l.PerSecond, l.Refreshes, l.Seconds, l.Errors, b, l.Config.Workers, l.Config.Objects, l.APIServerCPUMillis, l.EtcdCPUMillis)
	if l.FirstError != "" {
		msg += "; first error: " + l.FirstError
	}
	return msg
}
