package controllers

import (
	"context"

	oauthv1alpha1 "github.com/grantkeeper/grantkeeper/api/v1alpha1"
)

// SecretBucket is the index bucket of a Secret name, for tests that need two names in one.
var SecretBucket = bucketValue

// TrimCachedSecret is the transform the manager's cache applies to labelled Secrets.
var TrimCachedSecret = trimDerivedSecret

// WriteStatus is the reconciler's one status write.
func (r *GrantReconciler) WriteStatus(ctx context.Context, g *oauthv1alpha1.GoogleOAuthGrant, st oauthv1alpha1.GrantStatus) error {
	return r.writeStatus(ctx, g, st)
}

// KnownPriority is the work-queue priority of every requeue.
const KnownPriority = knownPriority
