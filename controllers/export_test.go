package controllers

// SecretBucket is the index bucket of a Secret name, for tests that need two names in one.
var SecretBucket = bucketValue

// TrimCachedSecret is the transform the manager's cache applies to labelled Secrets.
var TrimCachedSecret = trimDerivedSecret
