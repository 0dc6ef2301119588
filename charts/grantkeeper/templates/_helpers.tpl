{{- define "grantkeeper.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "grantkeeper.labels" -}}
app.kubernetes.io/name: grantkeeper
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: grantkeeper
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "grantkeeper.selectorLabels" -}}
app.kubernetes.io/name: grantkeeper
control-plane: controller-manager
{{- end -}}

{{/* the endpoints Deployment's Pods (the consent server and receiver, issue 28 item 6) */}}
{{- define "grantkeeper.endpointsSelectorLabels" -}}
app.kubernetes.io/name: grantkeeper
control-plane: endpoints
{{- end -}}

{{- define "grantkeeper.consentKeySecret" -}}
{{ include "grantkeeper.fullname" . }}-consent-key
{{- end -}}

{{- define "grantkeeper.serviceAccountName" -}}
{{ include "grantkeeper.fullname" . }}-controller-manager
{{- end -}}

{{/* rules of a Role or ClusterRole in files/rbac (copied from config/rbac by make helm-sync) */}}
{{- define "grantkeeper.rules" -}}
{{- (.root.Files.Get (printf "files/rbac/%s" .file) | fromYaml).rules | toYaml }}
{{- end -}}

{{- define "grantkeeper.webhookCertSecret" -}}
{{ include "grantkeeper.fullname" . }}-webhook-server-cert
{{- end -}}

{{- define "grantkeeper.metadataServerImage" -}}
{{ .Values.injection.image.repository }}:{{ .Values.injection.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
