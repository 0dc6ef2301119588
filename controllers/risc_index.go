package controllers
func (r *GoogleOAuthGrantReconciler) noteRefreshToken(g any, in *inputs) {}
