{{/*
Helpers of the DIMS chart. Per-service templates are called with a context
  (dict "root" $ "name" "<service>" "svc" (index $.Values.services "<service>"))
where <service> is one of sip-edge, settings, storage, delivery, msrp-relay.
*/}}

{{- define "dims.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dims.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dims.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of a component's objects: <fullname>-<service>. The fullname part is cut to 40
characters so that the longest name (<fullname>-msrp-relay, <fullname>-sip-edge-sip) stays a
valid DNS label and distinct per component. Context: dict root, name.
*/}}
{{- define "dims.componentName" -}}
{{- printf "%s-%s" (include "dims.fullname" .root | trunc 40 | trimSuffix "-") .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of a component. Context: dict root, name. */}}
{{- define "dims.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dims.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* All labels of a component. Context: dict root, name. */}}
{{- define "dims.labels" -}}
helm.sh/chart: {{ include "dims.chart" .root }}
{{ include "dims.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: dims
{{- end }}

{{/* The one image of all services. Context: root. */}}
{{- define "dims.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* host:port of another service's gRPC endpoint. Context: dict root, target. */}}
{{- define "dims.grpcAddr" -}}
{{- $target := index .root.Values.services .target }}
{{- printf "%s:%d" (include "dims.componentName" (dict "root" .root "name" .target)) (int $target.grpcPort) }}
{{- end }}

{{- define "dims.redisAddr" -}}
{{- required "redis.addr (host:port of Redis) is required" .Values.redis.addr }}
{{- end }}

{{- define "dims.postgresSecretName" -}}
{{- required "postgres.existingSecret (a Secret holding the PostgreSQL DSN) is required" .Values.postgres.existingSecret }}
{{- end }}

{{/* DIMS_POSTGRES_DSN from the existing Secret. Context: root. */}}
{{- define "dims.postgresDsnEnv" -}}
- name: DIMS_POSTGRES_DSN
  valueFrom:
    secretKeyRef:
      name: {{ include "dims.postgresSecretName" . }}
      key: {{ .Values.postgres.existingSecretKey | default "dsn" }}
{{- end }}

{{/*
Environment of a service container: the DIMS_* configuration contract (flag --foo-bar is
DIMS_FOO_BAR). POD_IP and POD_NAME come from the downward API; Kubernetes expands $(POD_IP)
in later values. Context: dict root, name, svc.
*/}}
{{- define "dims.env" -}}
{{- $root := .root }}
{{- $svc := .svc -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: DIMS_INSTANCE_ID
  value: "$(POD_NAME)"
- name: DIMS_LOG_LEVEL
  value: {{ $root.Values.log.level | quote }}
- name: DIMS_LOG_FORMAT
  value: {{ $root.Values.log.format | quote }}
- name: DIMS_GRPC_LISTEN
  value: {{ printf "0.0.0.0:%d" (int $svc.grpcPort) | quote }}
- name: DIMS_METRICS_LISTEN
  value: {{ printf "0.0.0.0:%d" (int $svc.metricsPort) | quote }}
- name: DIMS_SHUTDOWN_GRACE_SECONDS
  value: {{ int $svc.shutdownGraceSeconds | quote }}
{{- if eq .name "sip-edge" }}
- name: DIMS_SIP_LISTEN
  value: {{ printf "0.0.0.0:%d" (int $svc.sipPort) | quote }}
- name: DIMS_DOMAINS
  value: {{ join "," $root.Values.sip.domains | quote }}
- name: DIMS_REDIS_ADDR
  value: {{ include "dims.redisAddr" $root | quote }}
- name: DIMS_SETTINGS_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "settings") | quote }}
- name: DIMS_STORAGE_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "storage") | quote }}
- name: DIMS_DELIVERY_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "delivery") | quote }}
- name: DIMS_ADVERTISED_GRPC_ADDR
  value: {{ printf "$(POD_IP):%d" (int $svc.grpcPort) | quote }}
- name: DIMS_REGISTRAR_MODE
  value: {{ $root.Values.registration.registrarMode | toString | quote }}
- name: DIMS_TRUSTED_CORE_ADDRESSES
  value: {{ join "," $root.Values.registration.trustedCoreAddresses | quote }}
{{- else if eq .name "settings" }}
- name: DIMS_REDIS_ADDR
  value: {{ include "dims.redisAddr" $root | quote }}
{{- else if eq .name "storage" }}
{{ include "dims.postgresDsnEnv" $root }}
- name: DIMS_POSTGRES_POOL_SIZE
  value: {{ int $root.Values.postgres.poolSize | quote }}
- name: DIMS_STORE_HOST
  value: {{ $root.Values.storeHost | quote }}
- name: DIMS_REDIS_ADDR
  value: {{ include "dims.redisAddr" $root | quote }}
{{- with $root.Values.store }}
- name: DIMS_MAX_MESSAGE_BYTES
  value: {{ int64 .maxMessageBytes | quote }}
- name: DIMS_MAX_USER_MESSAGES
  value: {{ int64 .maxUserMessages | quote }}
- name: DIMS_MAX_USER_BYTES
  value: {{ int64 .maxUserBytes | quote }}
- name: DIMS_RETENTION_SECONDS
  value: {{ int64 .retentionSeconds | quote }}
- name: DIMS_MAX_RETENTION_SECONDS
  value: {{ int64 .maxRetentionSeconds | quote }}
- name: DIMS_PURGE_INTERVAL_SECONDS
  value: {{ int64 .purgeIntervalSeconds | quote }}
{{- end }}
{{- else if eq .name "delivery" }}
- name: DIMS_REDIS_ADDR
  value: {{ include "dims.redisAddr" $root | quote }}
- name: DIMS_SETTINGS_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "settings") | quote }}
- name: DIMS_STORAGE_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "storage") | quote }}
- name: DIMS_RELAY_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "msrp-relay") | quote }}
{{- else if eq .name "msrp-relay" }}
- name: DIMS_MSRP_LISTEN
  value: {{ printf "0.0.0.0:%d" (int $svc.msrpPort) | quote }}
- name: DIMS_STORAGE_ADDR
  value: {{ include "dims.grpcAddr" (dict "root" $root "target" "storage") | quote }}
- name: DIMS_MSRP_ADVERTISED_HOST
  value: {{ $root.Values.msrp.advertisedHost | default "$(POD_IP)" | quote }}
- name: DIMS_ADVERTISED_GRPC_ADDR
  value: {{ printf "$(POD_IP):%d" (int $svc.grpcPort) | quote }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with $svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
