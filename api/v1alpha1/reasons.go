package v1alpha1

// Every condition type and reason grantkeeper's kinds report, in one place (a contract:
// tools, alerts and `kubectl wait` rely on them; docs/troubleshooting.md has an entry per
// reason).

// Condition types.
const (
	// ConditionReady is True while the derived Secret holds an access token that has not expired.
	ConditionReady = "Ready"
	// ConditionStalled follows the kstatus convention (read by Flux, Argo CD and kstatus):
	// True when the grant makes no progress until a person changes something (a Secret, the
	// spec, a consent, a manual refresh), with Ready's reason; False otherwise (healthy, or
	// failing transiently and retrying on its own). Always present once the grant was
	// reconciled, so `kubectl wait --for=condition=Stalled=false` works.
	ConditionStalled = "Stalled"
	// ConditionRevoked is True when Google rejected the refresh token (invalid_grant) or a
	// security event revoked it.
	ConditionRevoked = "Revoked"
	// ConditionScopesGranted is set only when spec.scopes is set.
	ConditionScopesGranted = "ScopesGranted"
	// ConditionSecretsWritable is False (reason SecretNotOwned) when grantkeeper would have to
	// write a Secret that is not its own for this grant (a consent link's, or the refresh
	// token's) and wrote nothing; absent otherwise.
	ConditionSecretsWritable = "SecretsWritable"
)

// Reasons of a grant's conditions.
const (
	ReasonTokenValid           = "TokenValid"
	ReasonInvalidGrant         = "InvalidGrant"
	ReasonInvalidClient        = "InvalidClient"
	ReasonSecretNotFound       = "SecretNotFound"
	ReasonSecretKeyMissing     = "SecretKeyMissing"
	ReasonInvalidClientSecret  = "InvalidClientSecret"
	ReasonTargetSecretConflict = "TargetSecretConflict"
	ReasonTokenEndpointError   = "TokenEndpointError"
	ReasonRefreshSucceeded     = "RefreshSucceeded"
	ReasonMissingScopes        = "MissingScopes"
	ReasonAllScopesGranted     = "AllScopesGranted"
	// ReasonTokenRequestRejected: the token endpoint refused the request for a reason
	// that retrying will not fix (invalid_scope, admin_policy_enforced, invalid_request...).
	ReasonTokenRequestRejected = "TokenRequestRejected"
	// ReasonPending: no token has been obtained yet.
	ReasonPending = "Pending"
	// ReasonInvalidServiceAccountKey: the service-account key JSON cannot be used.
	ReasonInvalidServiceAccountKey = "InvalidServiceAccountKey"
	// ReasonDelegationDenied: Google refused domain-wide delegation (unauthorized_client).
	ReasonDelegationDenied = "DelegationDenied"
	// ReasonExcessScopes: Google's answer carried scopes outside spec.scopes (other than
	// openid and the e-mail scope); the token was not published (issue 28).
	ReasonExcessScopes = "ExcessScopes"
	// ReasonSecretNotOwned: SecretsWritable=False.
	ReasonSecretNotOwned = "SecretNotOwned"
	// ReasonConsentRequired: consent links are enabled and the grant has no refresh token
	// yet; the account owner opens the consent link (instead of SecretNotFound/SecretKeyMissing).
	ReasonConsentRequired = "ConsentRequired"
	// ReasonProgressing: Stalled=False; the grant is healthy or retries on its own.
	ReasonProgressing = "Progressing"
)

// Reasons of Google's Cross-Account Protection security events: the Ready and Revoked
// reasons of a grant an event revoked, and the reasons of the events it records.
const (
	ReasonTokenRevokedByGoogle  = "TokenRevokedByGoogle"
	ReasonTokensRevokedByGoogle = "TokensRevokedByGoogle"
	ReasonAccountDisabled       = "AccountDisabled"
	// ReasonAccountEnabled is the Revoked=False reason once account-enabled lifted AccountDisabled.
	ReasonAccountEnabled = "AccountEnabled"
	// Warning events only: Google does not revoke OAuth tokens for these.
	ReasonSessionsRevoked                 = "SessionsRevokedByGoogle"
	ReasonAccountCredentialChangeRequired = "AccountCredentialChangeRequired"
)

// SecurityReasons are the Ready reasons a revoking security event sets.
var SecurityReasons = []string{ReasonTokenRevokedByGoogle, ReasonTokensRevokedByGoogle, ReasonAccountDisabled}

// Reasons of the OAuth client kinds' Ready condition and the grant reasons about its
// clientRef. The client kinds also use SecretNotFound, SecretKeyMissing and InvalidClientSecret.
const (
	// ReasonClientValid: the client's Secret holds a well-formed OAuth client.
	ReasonClientValid = "ClientValid"
	// ReasonClientNotFound: the grant's clientRef names no existing client object.
	ReasonClientNotFound = "ClientNotFound"
	// ReasonClientNotReady: the client object exists but is not Ready.
	ReasonClientNotReady = "ClientNotReady"
	// ReasonClientNotAllowed: a cluster client that does not admit the grant's namespace.
	ReasonClientNotAllowed = "ClientNotAllowed"
)
