{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "creditgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full object name: the release name, plus the chart name unless it already contains it. */}}
{{- define "creditgate.fullname" -}}
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

{{/* The server's pods; the migration Job's pods carry another component so that no Service
or budget ever selects them. */}}
{{- define "creditgate.selectorLabels" -}}
{{ include "creditgate.releaseLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "creditgate.releaseLabels" -}}
app.kubernetes.io/name: {{ include "creditgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "creditgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "creditgate.releaseLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "creditgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "creditgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "creditgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret and key holding DATABASE_URL; fails the render when neither source is set. */}}
{{- define "creditgate.databaseSecretName" -}}
{{- if and .Values.database.existingSecret .Values.database.url }}
{{- fail "set only one of database.existingSecret and database.url" }}
{{- else if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.database.url }}
{{- printf "%s-database" (include "creditgate.fullname" .) }}
{{- else }}
{{- fail "set database.existingSecret (a Secret holding DATABASE_URL) or database.url" }}
{{- end }}
{{- end }}

{{- define "creditgate.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}DATABASE_URL{{ end }}
{{- end }}

{{/* Settings as environment variables: values key → variable of `creditgate serve`. */}}
{{- define "creditgate.settingsEnv" -}}
{{- $names := dict
  "dbPoolSize" "CREDITGATE_DB_POOL_SIZE"
  "statementTimeoutMs" "CREDITGATE_STATEMENT_TIMEOUT_MS"
  "lockTimeoutMs" "CREDITGATE_LOCK_TIMEOUT_MS"
  "requestTimeoutMs" "CREDITGATE_REQUEST_TIMEOUT_MS"
  "drainMs" "CREDITGATE_DRAIN_MS"
  "maxRequestBytes" "CREDITGATE_MAX_REQUEST_BYTES"
  "keyCacheSeconds" "CREDITGATE_KEY_CACHE_SECONDS"
  "maxAmount" "CREDITGATE_MAX_AMOUNT"
  "defaultHoldTtlSeconds" "CREDITGATE_DEFAULT_HOLD_TTL_SECONDS"
  "maxHoldTtlSeconds" "CREDITGATE_MAX_HOLD_TTL_SECONDS"
  "maxPartialCaptures" "CREDITGATE_MAX_PARTIAL_CAPTURES"
  "refundGrantDays" "CREDITGATE_REFUND_GRANT_DAYS"
  "quoteTtlSeconds" "CREDITGATE_QUOTE_TTL_SECONDS"
  "idempotencyRetentionDays" "CREDITGATE_IDEMPOTENCY_RETENTION_DAYS"
  "sweepIntervalMs" "CREDITGATE_SWEEP_INTERVAL_MS"
  "sweepBatch" "CREDITGATE_SWEEP_BATCH"
  "expiryWarningHours" "CREDITGATE_EXPIRY_WARNING_HOURS"
  "eventRetentionDays" "CREDITGATE_EVENT_RETENTION_DAYS"
  "eventPollMs" "CREDITGATE_EVENT_POLL_MS"
  "watchStreamsPerTenant" "CREDITGATE_WATCH_STREAMS_PER_TENANT"
  "watchBuffer" "CREDITGATE_WATCH_BUFFER"
  "watchStallSeconds" "CREDITGATE_WATCH_STALL_SECONDS"
  "webhookIntervalMs" "CREDITGATE_WEBHOOK_INTERVAL_MS"
  "partitionIntervalSeconds" "CREDITGATE_PARTITION_INTERVAL_SECONDS"
  "logFormat" "CREDITGATE_LOG_FORMAT"
  "logLevel" "RUST_LOG" }}
{{- range $key := keys .Values.settings | sortAlpha }}
{{- $name := get $names $key }}
{{- if not $name }}{{ fail (printf "settings.%s is not a creditgate setting" $key) }}{{ end }}
{{- $value := get $.Values.settings $key }}
{{- /* Values files give numbers as floats; 1048576 must not become 1.048576e+06. */}}
{{- if kindIs "float64" $value }}{{ $value = int64 $value }}{{ end }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
CREDITGATE_LISTEN: {{ printf "0.0.0.0:%d" (int .Values.grpc.port) | quote }}
{{- with .Values.tls.secretName }}
CREDITGATE_TLS_CERT: /etc/creditgate/tls/tls.crt
CREDITGATE_TLS_KEY: /etc/creditgate/tls/tls.key
{{- end }}
{{- with .Values.tls.clientCaSecretName }}
CREDITGATE_TLS_CLIENT_CA: /etc/creditgate/client-ca/ca.crt
{{- end }}
{{- if .Values.metrics.enabled }}
CREDITGATE_METRICS_LISTEN: {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}
{{- end }}

{{/* Refuses values that render valid objects but a broken service: a grace period that would
SIGKILL a pod still draining calls, a liveness probe that would restart a pod for draining (health
says NOT_SERVING then), a client CA without TLS, a ServiceMonitor with nothing to scrape. */}}
{{- define "creditgate.checkValues" -}}
{{- $drainSeconds := div (add .Values.settings.drainMs .Values.settings.requestTimeoutMs 999) 1000 }}
{{- if le (int .Values.shutdown.terminationGracePeriodSeconds) (int $drainSeconds) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%d) must exceed settings.drainMs plus settings.requestTimeoutMs (%d s)" (int .Values.shutdown.terminationGracePeriodSeconds) (int $drainSeconds)) }}
{{- end }}
{{- $liveness := .Values.probes.liveness }}
{{- if le (int (mul $liveness.periodSeconds $liveness.failureThreshold)) (int $drainSeconds) }}
{{- fail (printf "probes.liveness.periodSeconds × failureThreshold must exceed the drain (%d s), or a draining pod is restarted" (int $drainSeconds)) }}
{{- end }}
{{- if and .Values.tls.clientCaSecretName (not .Values.tls.secretName) }}
{{- fail "tls.clientCaSecretName needs tls.secretName (client certificates are checked over TLS)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- end }}

{{/* A probe of the gRPC port: the health service in plaintext; with TLS, which Kubernetes' gRPC
probes cannot speak, only that the port accepts connections. */}}
{{- define "creditgate.probeAction" -}}
{{- if .Values.tls.secretName }}
tcpSocket:
  port: grpc
{{- else }}
grpc:
  port: {{ .Values.grpc.port }}
{{- end }}
{{- end }}

{{/* The Postgres CA, mounted for DATABASE_URL's sslrootcert. */}}
{{- define "creditgate.postgresCaVolume" -}}
{{- with .Values.database.caSecretName }}
- name: postgres-ca
  secret:
    secretName: {{ . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{- define "creditgate.postgresCaMount" -}}
{{- if .Values.database.caSecretName }}
- name: postgres-ca
  mountPath: /etc/creditgate/postgres-ca
  readOnly: true
{{- end }}
{{- end }}
