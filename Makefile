# grantkeeper: every tool is built from the Go module proxy into ./bin; nothing is curl'ed.
# The tools, Hydra and the Kubernetes binaries are built once per machine and user and kept in
# ${XDG_CACHE_HOME:-~/.cache}/grantkeeper (hack/lib/bincache.sh; GRANTKEEPER_CACHE=off: not);
# a fresh clone copies them from there.

# The one place the Kubernetes version is set; hack/k8s-binaries/go.mod must pin the same.
K8S_VERSION ?= $(shell cat hack/k8s-version)
K8S_BIN     ?= $(CURDIR)/bin/k8s/$(K8S_VERSION)
LOCALBIN    ?= $(CURDIR)/bin

CONTROLLER_TOOLS_VERSION ?= v0.23.0
# kustomize v5.8.3 needs Go 1.27.
KUSTOMIZE_VERSION        ?= v5.8.2
GOTESTSUM_VERSION        ?= v1.13.0
HELM_VERSION             ?= v4.3.1
# Release tools: SBOMs, krew's manifest validator and krew itself, the workflow linter,
# and crane (release.yaml pushes the image indexes with it).
CYCLONEDX_GOMOD_VERSION  ?= v1.10.0
KREW_VERSION             ?= v0.4.3
ACTIONLINT_VERSION       ?= v1.7.12
CRANE_VERSION            ?= v0.22.1
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOTESTSUM      ?= $(LOCALBIN)/gotestsum-$(GOTESTSUM_VERSION)
KUSTOMIZE      ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
HELM           ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CYCLONEDX_GOMOD ?= $(LOCALBIN)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)
VALIDATE_KREW_MANIFEST ?= $(LOCALBIN)/validate-krew-manifest-$(KREW_VERSION)
KREW           ?= $(LOCALBIN)/krew-$(KREW_VERSION)
ACTIONLINT     ?= $(LOCALBIN)/actionlint-$(ACTIONLINT_VERSION)
CRANE          ?= $(LOCALBIN)/crane-$(CRANE_VERSION)
# Ory Hydra, the real OAuth 2.0 server the provider tests run (test/framework/hydra): its
# version is the one hack/hydra/go.mod pins.
HYDRA_VERSION  ?= $(shell awk '$$1 == "github.com/ory/hydra/v2" { print $$2 }' hack/hydra/go.mod)
HYDRA          ?= $(LOCALBIN)/hydra-$(HYDRA_VERSION)

IMG ?= grantkeeper:latest
# The metadata-server sidecar the injection webhook adds to annotated Pods.
METADATA_IMG ?= grantkeeper-metadata-server:latest
# Test packages share one control plane each. -p 4 on our two cores: the long suites spend
# most of their time waiting on real time (token lifetimes, rollouts, a kubelet), and with
# -p 2 two of them held both lanes while the CPU idled and every other package queued
# behind them (docs/development.md). -count=1: most suites depend on what go's test cache
# cannot see (the Kubernetes binaries, apt packages, the kubelet), so a cached "ok" would not
# mean the suite passed now.
# -race on every package, in one go test: the suites that only drive processes (test/e2e,
# incluster, pods, prometheus, libraries, helm; the manager they run is built without -race)
# pay for it only in their test binary's link and in the fake Google they serve, a few
# seconds each, while -race off for them means a second go test whose packages cannot share
# the lanes with the first (measured in docs/development.md).
# -trimpath (here and in vet): the compiles and vet results are then not tied to the
# checkout's directory, so a fresh clone (CI's) finds this module's packages compiled and
# vetted in Go's build cache instead of compiling and vetting all of them again.
TEST_FLAGS ?= -race -trimpath -p 4 -timeout 20m -count=1
# The order go test starts packages in (Go starts them in the order given): the longest
# first, so the run does not end on one long package while the other lanes idle. The two
# kubelet suites take a machine-wide lock, and one waiting for it holds a lane: test/pods
# comes after test/incluster, controllers, test/e2e and test/consent, so it starts when one
# of them ends and waits less.
TEST_ORDER := ./test/incluster ./controllers ./test/e2e ./test/consent ./test/pods ./test/prometheus \
	./test/libraries ./test/helm ./test/risc ./test/rules ./test/metricsauth
# The commands the suites run as processes or pack into images, built once for all of them
# (test/framework/gobuild), the way images are built (hack/image/imagebuild: BuildEnv,
# BuildFlags), so test/incluster and test/pods pack these instead of building their own.
TEST_BINS := $(LOCALBIN)/test
MODULE = $(shell go list -m)
TEST_BIN_PKGS := ./cmd/manager ./cmd/kubectl-grantkeeper ./cmd/metadata-server ./examples/adc ./examples/pause ./examples/consumer
# How this module's commands are built, by make build and make demo as by make test (and the
# images): static and -trimpath. One compile configuration for all of them, so on an empty
# build cache the dependencies (client-go, controller-runtime ...) are compiled once for the
# commands, and, -trimpath hashing no directory, test/e2e's TestDemoTwice (make demo in a
# fresh copy of the tree) finds them compiled too (docs/development.md).
GO_BUILD := CGO_ENABLED=0 go build -trimpath
TEST_BINS_BUILD := $(GO_BUILD) -buildvcs=false -ldflags='-s -w'

export KUBEBUILDER_ASSETS := $(K8S_BIN)
# test/helm runs this helm; test/release these tools; test/framework/hydra this Hydra.
export HELM CYCLONEDX_GOMOD VALIDATE_KREW_MANIFEST KREW HYDRA

.PHONY: all
all: build

##@ Development

# controller-gen's generators: the CRD, RBAC and webhook manifests; the DeepCopy methods.
GEN_MANIFESTS := rbac:roleName=manager-role crd webhook output:crd:artifacts:config=config/crd/bases
GEN_OBJECT    := object:headerFile=hack/boilerplate.go.txt
GEN_PATHS     := paths="./..."

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC from controller-gen markers, and the API reference docs/reference/api.md from the Go types.
	$(CONTROLLER_GEN) $(GEN_MANIFESTS) $(GEN_PATHS)
	@bash hack/helm-sync.sh
	go run ./hack/apidocs -api api/v1alpha1 -o docs/reference/api.md

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) $(GEN_OBJECT) $(GEN_PATHS)

.PHONY: generated
generated: $(CONTROLLER_GEN) ## manifests and generate in one controller-gen run (one load of every package instead of two; what verify-generated runs).
	$(CONTROLLER_GEN) $(GEN_OBJECT) $(GEN_MANIFESTS) $(GEN_PATHS)
	@bash hack/helm-sync.sh
	go run ./hack/apidocs -api api/v1alpha1 -o docs/reference/api.md

.PHONY: verify-generated
# "+": its script runs make, which then shares the job server (make test runs it under -j4).
verify-generated: $(CONTROLLER_GEN) ## Fail if the committed generated files are stale.
	+@bash hack/verify-generated.sh

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
# -race -trimpath: vet compiles every dependency, and with the test's flags (TEST_FLAGS) it
# compiles the ones make test then links (an empty build cache compiles client-go and
# friends once, not twice).
vet: ## go vet, and gofmt must have nothing to change.
	go vet -race -trimpath ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: test
test: ## Vet, check generated files and workflows, run every unit, envtest and e2e test with -race (the fuzz seeds included; fuzzing proper is make fuzz).
	@$(MAKE) --no-print-directory -j4 test-prepare
	GRANTKEEPER_TEST_BINS=$(TEST_BINS) $(GOTESTSUM) --format testname -- $(TEST_FLAGS) \
		$(TEST_ORDER) $(filter-out $(patsubst ./%,$(MODULE)/%,$(TEST_ORDER)),$(shell go list ./...))

# What make test's go test needs, in two kinds side by side: the checks, one after another,
# then bin/test (it compiles files verify-generated may rewrite, and vet reads them); and
# the Kubernetes binaries, Hydra and the tools (other modules: they neither read nor write
# this tree's files). On a warm cache that hides the links of the Kubernetes binaries and the
# tools behind the checks; on a cold one, Hydra's module downloads and single-threaded links
# behind the compiles.
# The checks' chain starts with vet at once: controller-gen and actionlint are built beside
# it (on an empty cache vet waited 13 minutes for them when they were its prerequisites).
.PHONY: test-prepare test-vet test-verify test-lint test-bins
test-prepare: test-bins k8s-binaries hydra $(GOTESTSUM) $(HELM)
test-vet:
	@$(MAKE) --no-print-directory vet
test-verify: test-vet $(CONTROLLER_GEN)
	@$(MAKE) --no-print-directory verify-generated
test-lint: test-verify $(ACTIONLINT)
	@$(MAKE) --no-print-directory lint-workflows
test-bins: test-lint
	$(TEST_BINS_BUILD) -o $(TEST_BINS)/ $(TEST_BIN_PKGS)

# Not part of make test: each target builds a coverage-instrumented binary (about a minute
# each on an empty build cache). .ci/run runs it after make test.
# A count, not a duration: Go 1.26's fuzz coordinator can fail a duration run at its deadline
# with "context deadline exceeded" and no crasher (golang/go#75804, fixed in Go 1.27; seen
# here in a clean-clone CI run).
FUZZTIME ?= 20000x
.PHONY: fuzz
fuzz: ## Fuzz token-response handling, credential parsing, security-event deliveries, metadata-server answers and providers' metadata documents for FUZZTIME each (the seeds are the f.Add calls in each fuzz test).
	go test -run '^$$' -fuzz '^FuzzRefreshResponse$$' -fuzztime $(FUZZTIME) ./internal/tokenclient
	go test -run '^$$' -fuzz '^FuzzParseClient$$' -fuzztime $(FUZZTIME) ./internal/credentials
	go test -run '^$$' -fuzz '^FuzzParseAuthorizedUser$$' -fuzztime $(FUZZTIME) ./internal/credentials
	go test -run '^$$' -fuzz '^FuzzParseServiceAccountKey$$' -fuzztime $(FUZZTIME) ./internal/credentials
	go test -run '^$$' -fuzz '^FuzzReceiver$$' -fuzztime $(FUZZTIME) ./internal/risc
	go test -run '^$$' -fuzz '^FuzzAnswer$$' -fuzztime $(FUZZTIME) ./internal/metadataserver
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/oauthdiscovery

.PHONY: lint-workflows
lint-workflows: $(ACTIONLINT) ## Check .github/workflows with actionlint (its shellcheck and pyflakes passes off: the same result whatever is installed).
	$(ACTIONLINT) -no-color -shellcheck= -pyflakes= .github/workflows/*.yaml

.PHONY: release-test
release-test: $(GOTESTSUM) $(KUSTOMIZE) $(HELM) $(CYCLONEDX_GOMOD) $(VALIDATE_KREW_MANIFEST) $(KREW) ## Run make release VERSION=v0.0.0-test into a temporary DIST twice and check what it wrote (test/release; not yet in .ci/run).
	$(GOTESTSUM) --format testname -- -tags releasetest -count=1 -timeout 30m ./test/release/...

.PHONY: test-e2e
test-e2e: k8s-binaries $(GOTESTSUM) ## Only the kubectl end-to-end suite (also part of make test).
	$(GOTESTSUM) --format testname -- $(TEST_FLAGS) ./test/e2e/...

.PHONY: test-pods
test-pods: k8s-binaries $(GOTESTSUM) ## Only the kubelet-backed pod test (root; installs containerd and runc with apt-get; also part of make test).
	$(GOTESTSUM) --format standard-verbose -- $(TEST_FLAGS) ./test/pods/...

.PHONY: test-consent
test-consent: k8s-binaries $(GOTESTSUM) ## Only the consent-link suite: HTTP level and headless Chromium (root installs chromium with apt-get; screenshots in $$ARTIFACTS/consent or test/consent/artifacts).
	$(GOTESTSUM) --format testname -- $(TEST_FLAGS) ./test/consent/...

.PHONY: test-incluster
test-incluster: k8s-binaries $(GOTESTSUM) ## Only the in-cluster test: the image on a real kubelet, deployed by config/default (root; also part of make test).
	$(GOTESTSUM) --format standard-verbose -- $(TEST_FLAGS) ./test/incluster/...

.PHONY: dashboard-png
dashboard-png: k8s-binaries ## Plot the Grafana dashboard's panels into docs/dashboard.png from the end-to-end Prometheus (test/prometheus; not part of make test).
	GRANTKEEPER_DASHBOARD_PNG=$(CURDIR)/docs/dashboard.png go test -count=1 -timeout 15m -v -run '^TestRevokedAlertOnARealPrometheus$$' ./test/prometheus

.PHONY: bench
bench: build k8s-binaries ## Benchmark the manager at scale (BENCH_GRANTS, BENCH_TOKEN_LIFETIME, ...; see docs/benchmarks.md).
	$(GO_BUILD) -o $(LOCALBIN)/bench ./hack/bench
	$(LOCALBIN)/bench

# The kubelet is for the pod test only, which runs only as root: auto builds it as root only.
K8S_KUBELET ?= auto
# Targets that never start a kubelet do not build one, whoever runs them.
demo bench: K8S_KUBELET = 0

.PHONY: k8s-binaries
k8s-binaries: ## Build kube-apiserver, etcd, kubectl, kube-controller-manager (and, as root, the kubelet) from Go modules into bin/k8s/<version>.
	@K8S_BINARIES_DIR=$(K8S_BIN) K8S_KUBELET=$(K8S_KUBELET) bash hack/k8s-binaries.sh

.PHONY: hydra
hydra: ## Build Ory Hydra (the real OAuth 2.0 server the provider tests run) from the Go module proxy into bin/hydra-<version>, with SQLite for its in-memory storage (cgo: needs a C compiler).
	@HYDRA=$(HYDRA) bash hack/hydra.sh

##@ Build

.PHONY: build
build: ## Build bin/manager, bin/kubectl-grantkeeper, bin/metadata-server and bin/fake-google, static as in the images (one go build: the four links run side by side).
	$(GO_BUILD) -o $(LOCALBIN)/ ./cmd/manager ./cmd/metadata-server ./cmd/kubectl-grantkeeper ./hack/fake-google

.PHONY: run
run: manifests ## Run the manager against the current kubeconfig (install CRDs first: make install).
	go run ./cmd/manager $(ARGS)

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the current kubeconfig's cluster.
	$(KUSTOMIZE) build config/crd | kubectl apply -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the controller (images $(IMG), $(METADATA_IMG)) to the current kubeconfig's cluster.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	cd config/endpoints && $(KUSTOMIZE) edit set image controller=$(IMG)
	cd config/default && $(KUSTOMIZE) edit set image grantkeeper-metadata-server=$(METADATA_IMG)
	$(KUSTOMIZE) build config/default | kubectl apply -f -

IMAGE_ARCHIVE ?= $(LOCALBIN)/image/grantkeeper.tar
METADATA_IMAGE_ARCHIVE ?= $(LOCALBIN)/image/grantkeeper-metadata-server.tar
.PHONY: image
image: ## Build the manager image $(IMG) and the sidecar image $(METADATA_IMG) without a Docker engine into $(IMAGE_ARCHIVE) and $(METADATA_IMAGE_ARCHIVE) (docker-archive: docker load, ctr images import, kind load image-archive).
	go run ./hack/image -pkg ./cmd/manager -tag $(IMG) -o $(IMAGE_ARCHIVE)
	go run ./hack/image -pkg ./cmd/metadata-server -tag $(METADATA_IMG) -o $(METADATA_IMAGE_ARCHIVE)

DIST ?= $(CURDIR)/dist
# make release VERSION=vX.Y.Z: the images are $(IMAGE_REPO):$(VERSION) and
# $(METADATA_IMAGE_REPO):$(VERSION); the plugin archives are downloaded (krew) from
# $(DOWNLOAD_URL)/$(VERSION)/.
VERSION             ?=
IMAGE_REPO          ?= ghcr.io/grantkeeper/grantkeeper
METADATA_IMAGE_REPO ?= ghcr.io/grantkeeper/grantkeeper-metadata-server
DOWNLOAD_URL        ?= https://github.com/grantkeeper/grantkeeper/releases/download
# The chart release-manifests packages (make release: a copy with the release's version and images).
CHART               ?= charts/grantkeeper
.PHONY: release
release: $(KUSTOMIZE) $(HELM) $(CYCLONEDX_GOMOD) ## make release VERSION=vX.Y.Z: everything a release publishes into $(DIST) (docs/installation.md#releases): multi-arch image indexes (OCI layouts), plugin archives, krew manifest, SBOMs, install.yaml, the chart, SHA256SUMS.
	@test -n "$(VERSION)" || { echo "make release needs VERSION=vX.Y.Z (make release-manifests writes install.yaml and the chart for IMG)"; exit 1; }
	@mkdir -p $(DIST)
	go run ./hack/release -version $(VERSION) -dist $(DIST) -image-repo $(IMAGE_REPO) -metadata-image-repo $(METADATA_IMAGE_REPO) -download-url $(DOWNLOAD_URL) -chart charts/grantkeeper -chart-out $(DIST)/.chart
	@$(MAKE) --no-print-directory release-manifests IMG=$(IMAGE_REPO):$(VERSION) METADATA_IMG=$(METADATA_IMAGE_REPO):$(VERSION) CHART=$(DIST)/.chart
	@rm -rf $(DIST)/.chart $(DIST)/sbom && mkdir -p $(DIST)/sbom
	@# One SBOM per binary: the modules linked into it (go version -m), as CycloneDX JSON.
	@# -noserial -notimestamp: no random serial number, no wall-clock time (reproducible).
	for b in manager metadata-server kubectl-grantkeeper; do \
	  GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(CYCLONEDX_GOMOD) app -json -noserial -notimestamp -main cmd/$$b -output $(DIST)/sbom/$$b.cdx.json . || exit 1; \
	done
	cd $(DIST) && sha256sum kubectl-grantkeeper_$(VERSION)_* install.yaml grantkeeper-*.tgz sbom/*.cdx.json krew/grantkeeper.yaml images/digests.txt > SHA256SUMS
	@echo "release $(VERSION) written to $(DIST)"; cat $(DIST)/images/digests.txt

.PHONY: release-manifests
release-manifests: $(KUSTOMIZE) $(HELM) ## Write $(DIST)/install.yaml (config/default with images $(IMG) and $(METADATA_IMG): kubectl apply -f and done) and the packaged $(CHART).
	@rm -rf $(DIST)/.release && mkdir -p $(DIST)/.release
	@printf 'resources:\n- %s\n' "$$(realpath --relative-to=$(DIST)/.release $(CURDIR)/config/default)" > $(DIST)/.release/kustomization.yaml
	cd $(DIST)/.release && $(KUSTOMIZE) edit set image grantkeeper=$(IMG) grantkeeper-metadata-server=$(METADATA_IMG)
	$(KUSTOMIZE) build $(DIST)/.release > $(DIST)/install.yaml
	@rm -rf $(DIST)/.release
	$(HELM) lint --strict $(CHART)
	@# The chart archive's entries carry their files' modification times (make release writes
	@# a fresh copy each time): a fixed SOURCE_DATE_EPOCH (Helm >= 4.2 honours it) keeps the
	@# archive the same bytes for the same inputs; 1980-01-01, as the plugin archives.
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-315532800} $(HELM) package $(CHART) -d $(DIST)
	@echo "release: $(DIST)/install.yaml and $$(ls $(DIST)/grantkeeper-*.tgz)"

CHART_REPO ?= ghcr.io/grantkeeper/charts
.PHONY: push-release
push-release: $(CRANE) $(HELM) ## Push $(DIST)'s image indexes to $(IMAGE_REPO) and $(METADATA_IMAGE_REPO) and the chart to oci://$(CHART_REPO) (release.yaml, after registry logins).
	@test -n "$(VERSION)" || { echo "make push-release needs VERSION=vX.Y.Z"; exit 1; }
	$(CRANE) push $(DIST)/images/$(notdir $(IMAGE_REPO)) $(IMAGE_REPO):$(VERSION)
	$(CRANE) push $(DIST)/images/$(notdir $(METADATA_IMAGE_REPO)) $(METADATA_IMAGE_REPO):$(VERSION)
	$(HELM) push $(DIST)/grantkeeper-$(patsubst v%,%,$(VERSION)).tgz oci://$(CHART_REPO)

.PHONY: helm
helm: $(HELM) ## Build helm into bin/.

.PHONY: test-tools
test-tools: k8s-binaries hydra $(CONTROLLER_GEN) $(ACTIONLINT) $(GOTESTSUM) $(HELM) ## Build (or copy from the per-user cache) what make test runs from other modules: the Kubernetes binaries, Hydra, controller-gen, actionlint, gotestsum, helm.

.PHONY: docker-build
docker-build: ## Build the same image with a Docker engine (the Dockerfile; a test keeps it in step with make image).
	docker build -t $(IMG) .

##@ Tools

# Each through the per-user cache (hack/gotool.sh): built by the first clone on the machine.
$(CONTROLLER_GEN):
	@bash hack/gotool.sh $@ sigs.k8s.io/controller-tools/cmd/controller-gen $(CONTROLLER_TOOLS_VERSION)

$(GOTESTSUM):
	@bash hack/gotool.sh $@ gotest.tools/gotestsum $(GOTESTSUM_VERSION)

$(HELM):
	@bash hack/gotool.sh $@ helm.sh/helm/v4/cmd/helm $(HELM_VERSION)

$(KUSTOMIZE):
	@bash hack/gotool.sh $@ sigs.k8s.io/kustomize/kustomize/v5 $(KUSTOMIZE_VERSION)

$(CYCLONEDX_GOMOD):
	@bash hack/gotool.sh $@ github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod $(CYCLONEDX_GOMOD_VERSION)

$(VALIDATE_KREW_MANIFEST):
	@bash hack/gotool.sh $@ sigs.k8s.io/krew/cmd/validate-krew-manifest $(KREW_VERSION)

$(KREW):
	@bash hack/gotool.sh $@ sigs.k8s.io/krew/cmd/krew $(KREW_VERSION)

$(ACTIONLINT):
	@bash hack/gotool.sh $@ github.com/rhysd/actionlint/cmd/actionlint $(ACTIONLINT_VERSION)

$(CRANE):
	@bash hack/gotool.sh $@ github.com/google/go-containerregistry/cmd/crane $(CRANE_VERSION)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Demo

.PHONY: demo
demo: build k8s-binaries ## Run the walkthrough on a local control plane (Ctrl-C stops it; DEMO_EXIT=1 exits after it).
	$(GO_BUILD) -o $(LOCALBIN)/demo ./hack/demo
	$(LOCALBIN)/demo
