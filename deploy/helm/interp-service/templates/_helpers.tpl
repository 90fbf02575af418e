{{/* Names, labels, images, secrets and the computed grace periods; every check the values must pass. */}}

{{- define "interp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "interp.fullname" -}}
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

{{/* Labels of a resource that belongs to no one component (ConfigMap, Secrets, policies). */}}
{{- define "interp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: interp-service
app.kubernetes.io/name: {{ include "interp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of a component's resources and pods: the common ones plus its selector labels (same arguments). */}}
{{- define "interp.componentLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: interp-service
{{ include "interp.selectorLabels" . }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "api"), plus "group" for a worker group. */}}
{{- define "interp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "interp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .group }}
interp-service/model-group: {{ .group }}
{{- end }}
{{- end -}}

{{- define "interp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "interp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, the tag defaulting to the chart's appVersion: (dict "image" .Values.image.api "root" $). */}}
{{- define "interp.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "image %s: pin a version, not latest (a rollout must be reproducible)" .image.repository) -}}
{{- end -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}

{{/* An environment value as a string: whole numbers without an exponent (values files parse numbers as floats). */}}
{{- define "interp.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* The longest hard time limit of any kind, in whole seconds. */}}
{{- define "interp.maxHardLimit" -}}
{{- $max := 0 -}}
{{- range $kind, $limits := .Values.worker.timeLimits -}}
{{- $hard := $limits.hard | float64 | ceil | int -}}
{{- if gt $hard $max -}}{{- $max = $hard -}}{{- end -}}
{{- end -}}
{{- $max -}}
{{- end -}}

{{/* Workers: preStop + the longest hard limit + a margin; Celery's warm shutdown (SIGTERM) finishes the running
     job, and a kill before the hard limit would lose it and redeliver it to another worker. */}}
{{- define "interp.workerGracePeriod" -}}
{{- $w := .Values.worker -}}
{{- $floor := add (int $w.preStopSleepSeconds) (include "interp.maxHardLimit" . | int) -}}
{{- if kindIs "invalid" $w.terminationGracePeriodSeconds -}}
{{- add $floor (int $w.terminationGraceMarginSeconds) -}}
{{- else -}}
{{- $set := int $w.terminationGracePeriodSeconds -}}
{{- if le $set $floor -}}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must exceed worker.preStopSleepSeconds + the longest hard time limit (%d s), or a stopped worker kills the job it runs" $set $floor) -}}
{{- end -}}
{{- $set -}}
{{- end -}}
{{- end -}}

{{/* API: preStop + the longest long-poll + a margin, so a stopping pod answers the requests it holds. */}}
{{- define "interp.apiGracePeriod" -}}
{{- $a := .Values.api -}}
{{- $floor := add (int $a.preStopSleepSeconds) ($a.maxWaitSeconds | float64 | ceil | int) -}}
{{- if kindIs "invalid" $a.terminationGracePeriodSeconds -}}
{{- add $floor (int $a.terminationGraceMarginSeconds) -}}
{{- else -}}
{{- $set := int $a.terminationGracePeriodSeconds -}}
{{- if le $set $floor -}}
{{- fail (printf "api.terminationGracePeriodSeconds (%d) must exceed api.preStopSleepSeconds + api.maxWaitSeconds (%d s), or stopping a pod cuts long-polls short" $set $floor) -}}
{{- end -}}
{{- $set -}}
{{- end -}}
{{- end -}}

{{- define "interp.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "interp.fullname" .) -}}
{{- end -}}

{{- define "interp.redisHost" -}}
{{- printf "%s-redis" (include "interp.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the Redis password (in-chart Redis) or the URL (external Redis). */}}
{{- define "interp.redisSecretName" -}}
{{- if .Values.redis.enabled -}}
{{- .Values.redis.auth.existingSecret | default (printf "%s-redis" (include "interp.fullname" .)) -}}
{{- else -}}
{{- .Values.externalRedis.existingSecret | default (printf "%s-external-redis" (include "interp.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{/* The key of the Redis password in that Secret; empty for an external Redis without a password. */}}
{{- define "interp.redisPasswordKey" -}}
{{- if .Values.redis.enabled -}}
{{- if .Values.redis.auth.existingSecret -}}{{ .Values.redis.auth.existingSecretPasswordKey }}{{- else -}}redis-password{{- end -}}
{{- else if .Values.externalRedis.existingSecret -}}
{{- .Values.externalRedis.existingSecretPasswordKey -}}
{{- else if .Values.externalRedis.password -}}
redis-password
{{- end -}}
{{- end -}}

{{/* REDIS_URL for the API and the workers, the password read from a Secret, never written into the spec. */}}
{{- define "interp.redisEnv" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "interp.redisSecretName" . }}
      key: {{ include "interp.redisPasswordKey" . }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "interp.redisHost" .) | quote }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "interp.redisSecretName" . }}
      key: {{ if .Values.externalRedis.existingSecret }}{{ .Values.externalRedis.existingSecretUrlKey }}{{ else }}redis-url{{ end }}
{{- end }}
{{- if .Values.rabbitmq.existingSecret }}
- name: BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.rabbitmq.existingSecret }}
      key: {{ .Values.rabbitmq.existingSecretUrlKey }}
{{- end }}
- name: INTERP_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "interp.secretName" . }}
      key: webhook-secret
{{- end -}}

{{/* INTERP_MODEL_GROUPS: model=group for every model of every group. */}}
{{- define "interp.modelGroups" -}}
{{- $pairs := list -}}
{{- range $group := .Values.workerGroups -}}
{{- range $model := $group.models -}}
{{- $pairs = append $pairs (printf "%s=%s" $model $group.name) -}}
{{- end -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Variables the chart sets itself: refused in .Values.env and in a group's env. */}}
{{- define "interp.reservedEnv" -}}
{{- $names := list "REDIS_URL" "REDIS_PASSWORD" "BROKER_URL" "INTERP_WEBHOOK_SECRET" "INTERP_KEY_PEPPER" "INTERP_REGISTRY" "INTERP_MODEL_GROUPS" "INTERP_MAX_WAIT_S" "INTERP_VISIBILITY_TIMEOUT_S" "INTERP_LEASE_S" "INTERP_REDIS_DURABILITY" "INTERP_CACHE_MAX_BYTES" "INTERP_CACHE_DIR" "INTERP_WORKER_METRICS_PORT" -}}
{{- range $kind, $_ := .Values.worker.timeLimits -}}
{{- $names = append $names (printf "INTERP_%s_SOFT_LIMIT_S" (upper $kind)) -}}
{{- $names = append $names (printf "INTERP_%s_HARD_LIMIT_S" (upper $kind)) -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* Every check of the values, run once (from the ConfigMap): a deployment mistake stops `helm install`. */}}
{{- define "interp.validate" -}}
{{- $root := . -}}
{{- /* Secrets: a name, or values to build one from; never a default in the chart. */ -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $hook := required "secrets.webhookSecret (or secrets.existingSecret) is required: echo \"whsec_$(openssl rand -base64 32)\"" .Values.secrets.webhookSecret | trim -}}
{{- if not (regexMatch "^whsec_[A-Za-z0-9+/]{32,}={0,2}$" $hook) -}}
{{- fail "secrets.webhookSecret: not a Standard Webhooks secret (whsec_ and the base64 of 24 to 64 random bytes)" -}}
{{- end -}}
{{- $pepper := required "secrets.keyPepper (or secrets.existingSecret) is required: python -c 'import secrets; print(secrets.token_urlsafe(32))'" .Values.secrets.keyPepper | trim -}}
{{- if lt (len $pepper) 16 -}}
{{- fail "secrets.keyPepper: at least 16 characters" -}}
{{- end -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- if not .Values.redis.auth.existingSecret -}}
{{- $password := required "redis.auth.password (or redis.auth.existingSecret) is required: openssl rand -hex 32" .Values.redis.auth.password | trim -}}
{{- if not (regexMatch "^[A-Za-z0-9._~-]+$" $password) -}}
{{- fail "redis.auth.password: letters, digits and . _ ~ - only (it is written into REDIS_URL unescaped)" -}}
{{- end -}}
{{- end -}}
{{- if le (mul (int64 .Values.redis.maxmemoryMb) 1048576) (int64 .Values.worker.cacheMaxBytes) -}}
{{- fail "redis.maxmemoryMb must exceed worker.cacheMaxBytes: the activation cache bounds itself below maxmemory, with room left for queues and job records" -}}
{{- end -}}
{{- else -}}
{{- if not .Values.externalRedis.existingSecret -}}
{{- $_ := required "externalRedis.url (or externalRedis.existingSecret) is required when redis.enabled is false" .Values.externalRedis.url -}}
{{- end -}}
{{- if .Values.keda.enabled -}}
{{- $_ := required "externalRedis.address (host:port) is required for KEDA, which takes no URL" .Values.externalRedis.address -}}
{{- end -}}
{{- end -}}
{{- /* Time limits and the visibility timeout. */ -}}
{{- range $kind, $limits := .Values.worker.timeLimits -}}
{{- if not (and (hasKey $limits "soft") (hasKey $limits "hard")) -}}
{{- fail (printf "worker.timeLimits.%s needs soft and hard" $kind) -}}
{{- end -}}
{{- if le (float64 $limits.hard) (float64 $limits.soft) -}}
{{- fail (printf "worker.timeLimits.%s: the hard limit must exceed the soft one" $kind) -}}
{{- end -}}
{{- end -}}
{{- if le (int .Values.worker.visibilityTimeoutSeconds) (include "interp.maxHardLimit" . | int) -}}
{{- fail "worker.visibilityTimeoutSeconds must exceed the longest hard time limit, or running jobs are redelivered" -}}
{{- end -}}
{{- if lt (int .Values.worker.terminationGraceMarginSeconds) 1 -}}
{{- fail "worker.terminationGraceMarginSeconds must be at least 1" -}}
{{- end -}}
{{- if lt (int .Values.api.terminationGraceMarginSeconds) 1 -}}
{{- fail "api.terminationGraceMarginSeconds must be at least 1" -}}
{{- end -}}
{{- $_ := include "interp.workerGracePeriod" . -}}
{{- $_ := include "interp.apiGracePeriod" . -}}
{{- if and .Values.api.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.api.resources)) -}}
{{- fail "api.resources.requests.cpu is required with api.autoscaling: the HPA scales on CPU utilisation of the request" -}}
{{- end -}}
{{- /* Worker groups. */ -}}
{{- if not .Values.workerGroups -}}
{{- fail "workerGroups: at least one group" -}}
{{- end -}}
{{- $names := dict -}}
{{- $models := dict -}}
{{- $webhooks := false -}}
{{- range $group := .Values.workerGroups -}}
{{- $name := required "workerGroups[].name is required" $group.name | toString -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$" $name) -}}
{{- fail (printf "workerGroups: %q is not a DNS label of at most 40 characters" $name) -}}
{{- end -}}
{{- if hasKey $names $name -}}
{{- fail (printf "workerGroups: %q appears twice" $name) -}}
{{- end -}}
{{- $_ := set $names $name true -}}
{{- if not $group.models -}}
{{- fail (printf "workerGroups.%s: models is empty" $name) -}}
{{- end -}}
{{- range $model := $group.models -}}
{{- if hasKey $models $model -}}
{{- fail (printf "model %q is in groups %s and %s: one group per model" $model (get $models $model) $name) -}}
{{- end -}}
{{- $_ := set $models $model $name -}}
{{- if not (contains $model $root.Values.registry) -}}
{{- fail (printf "workerGroups.%s: model %q is not in the registry" $name $model) -}}
{{- end -}}
{{- end -}}
{{- if dig "webhooks" true $group -}}{{- $webhooks = true -}}{{- end -}}
{{- if gt (int (dig "autoscaling" "minReplicas" 1 $group)) (int (dig "autoscaling" "maxReplicas" 1 $group)) -}}
{{- fail (printf "workerGroups.%s: autoscaling.minReplicas exceeds maxReplicas" $name) -}}
{{- end -}}
{{- range $key, $_ := ($group.env | default dict) -}}
{{- if has $key (splitList "," (include "interp.reservedEnv" $root)) -}}
{{- fail (printf "workerGroups.%s.env.%s: set by the chart from its values (or a Secret)" $name $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $webhooks -}}
{{- fail "workerGroups: no group consumes interp.webhooks (webhooks: true on at least one), so callbacks would never be sent" -}}
{{- end -}}
{{- range $key, $_ := .Values.env -}}
{{- if has $key (splitList "," (include "interp.reservedEnv" $root)) -}}
{{- fail (printf "env.%s: set by the chart from its values (or a Secret)" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy egress rules shared by the API and the workers. */}}
{{- define "interp.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}
{{- define "interp.redisEgress" -}}
{{- if .Values.redis.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "interp.selectorLabels" (dict "root" . "component" "redis") | nindent 10 }}
  ports:
    - {port: 6379, protocol: TCP}
{{- else }}
- to:
    - ipBlock:
        cidr: {{ .Values.networkPolicy.externalRedis.cidr }}
  ports:
    - {port: {{ .Values.networkPolicy.externalRedis.port }}, protocol: TCP}
{{- end }}
{{- if .Values.rabbitmq.existingSecret }}
- to:
    - ipBlock:
        cidr: {{ .Values.networkPolicy.rabbitmq.cidr }}
  ports:
    - {port: {{ .Values.networkPolicy.rabbitmq.port }}, protocol: TCP}
{{- end }}
{{- end -}}
