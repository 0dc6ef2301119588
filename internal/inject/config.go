package inject

// The webhook's registration, generated into config/webhook/manifests.yaml by `make manifests`.
// Pod CREATE only: the sidecar and its volume cannot be added to a running Pod. failurePolicy
// Ignore and the namespace and annotation filters that keep every other Pod off the webhook
// (config/webhook/kustomization.yaml, the chart's webhook.yaml) are explained in the README.
//
// +kubebuilder:webhook:path=/mutate-pods,mutating=true,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=inject.oauth.grantkeeper.dev,admissionReviewVersions=v1,reinvocationPolicy=IfNeeded,timeoutSeconds=5

// Path is where the manager's webhook server serves Handler (the marker above names it too).
const Path = "/mutate-pods"

// Webhook object names the manager and the manifests agree on (config/default's namePrefix
// turns the generated names into these; the chart writes them as they are).
const (
	ConfigurationName = "grantkeeper-mutating-webhook-configuration"
	ServiceName       = "grantkeeper-webhook-service"
	CertSecretName    = "grantkeeper-webhook-server-cert"
)
