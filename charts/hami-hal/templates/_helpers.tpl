{{- define "hami-hal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hami-hal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hami-hal.scheduler" -}}
{{- printf "%s-scheduler" (include "hami-hal.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hami-hal.node" -}}
{{- printf "%s-node" (include "hami-hal.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hami-hal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "hami-hal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "hami-hal.selector" -}}
app.kubernetes.io/name: {{ include "hami-hal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hami-hal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Every resource name kube-scheduler hands to the extender (HAMi: all ignoredByScheduler). */}}
{{- define "hami-hal.managedResources" -}}
{{- $n := .Values.devices.nvidia -}}
{{- $names := list $n.resourceCountName $n.resourceMemoryName $n.resourceMemoryPercentageName $n.resourceCoreName $n.resourcePriorityName -}}
{{- range (concat $names .Values.extraManagedResources) }}
- name: {{ . | quote }}
  ignoredByScheduler: true
{{- end }}
{{- end -}}
