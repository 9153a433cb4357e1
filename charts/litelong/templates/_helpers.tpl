{{/* Object name prefix: the release name when it already says litelong, else release-chart. */}}
{{- define "litelong.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "litelong.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: litelong
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "litelong.operatorSelector" -}}
app.kubernetes.io/name: litelong-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* kopf peering name: one per release, so releases never freeze each other. */}}
{{- define "litelong.peering" -}}
{{- default (include "litelong.fullname" .) .Values.operator.peering -}}
{{- end -}}

{{- define "litelong.operatorAccount" -}}
{{- default (printf "%s-operator" (include "litelong.fullname" .)) .Values.serviceAccount.operatorName -}}
{{- end -}}

{{- define "litelong.workerAccount" -}}
{{- default (printf "%s-worker" (include "litelong.fullname" .)) .Values.serviceAccount.workerName -}}
{{- end -}}

{{- define "litelong.storeClaim" -}}
{{- default (printf "%s-store" (include "litelong.fullname" .)) .Values.store.pvc.claimName -}}
{{- end -}}

{{/* Namespaces stage pods run in: the listed ones, or the release namespace. */}}
{{- define "litelong.workloadNamespaces" -}}
{{- $namespaces := .Values.workloadNamespaces | default (list .Release.Namespace) -}}
{{- toJson $namespaces -}}
{{- end -}}

{{/* repository:tag, the tag defaulting to the chart's appVersion. Call with (list $ .Values.images.x). */}}
{{- define "litelong.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
