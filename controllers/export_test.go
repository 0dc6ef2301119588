package controllers

// SecretBucket is the index bucket of a Secret name, for tests that need two names in one.
var SecretBucket = bucketValue
