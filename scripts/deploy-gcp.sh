#!/usr/bin/env bash
# Deploys (creates or updates) pixelpipe on Google Cloud: buckets, topics, the GCS -> Pub/Sub
# notification, one service account per function with least-privilege IAM (infra/gcp/iam.json: custom
# roles where no predefined role is narrow enough, conditioned bindings), and the five 2nd-gen Cloud
# Run functions (upload, images, process, notify, cascade). Safe to run again: every create is preceded
# by an existence check, custom roles are updated only when they drifted, IAM bindings are added only
# when missing, and `gcloud functions deploy` is itself create-or-update.
#
#   scripts/deploy-gcp.sh --project P --region R --jwks-url URL --jwt-issuer ISS --jwt-audience AUD \
#       [--name pixelpipe] [--cors-origins https://a,https://b] [--dry-run] [--skip-build]
#
# Run with --help for every option.
#
# In a brand-new project the first run can fail at a function deploy while freshly enabled APIs and
# service agents (Eventarc, Pub/Sub) and new IAM grants propagate: wait a few minutes and run the same
# command again; it picks up where it stopped.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/gcp-common.sh"

usage() {
  cat <<'EOF'
Usage: scripts/deploy-gcp.sh --project P --region R [options]

Required:
  --project P                 GCP project id
  --region R                  region of the functions (and, by default, of the buckets)
  --jwks-url URL              JWKS of the identity provider (or env PIXELPIPE_JWKS_URL)
  --jwt-issuer ISS            expected "iss" (or env PIXELPIPE_JWT_ISSUER)
  --jwt-audience AUD          expected "aud" (or env PIXELPIPE_JWT_AUDIENCE)

Options:
  --name NAME                 prefix of every resource (default: pixelpipe)
  --cors-origins LIST         comma-separated browser origins allowed to upload/read (no '*';
                              default: none, i.e. no browser access to the buckets)
  --originals-bucket B        default: <project>-<name>-originals
  --variants-bucket B         default: <project>-<name>-variants
  --bucket-location L         location of new buckets and of the storage trigger (default: region)
  --source-dir DIR            built bundles, one folder per function (default: dist/gcp)
  --skip-build                do not run `npm run build` first
  --dry-run                   print every command ("+ ..."), run none; assumes nothing exists yet
  --verbose                   also echo read-only lookups and show command output
  --log-level L               PIXELPIPE_LOG_LEVEL of the functions (default: info)
  --max-delivery-attempts N   deliveries before a trigger message is dead-lettered (5-100, default 10)
  --build-service-account SA  service account Cloud Build uses to build the functions (optional)

Sizing (flag or environment variable, default):
  --process-memory   DEPLOY_PROCESS_MEMORY         1Gi
  --process-cpu      DEPLOY_PROCESS_CPU            1
  --process-timeout  DEPLOY_PROCESS_TIMEOUT        120s
  --process-concurrency DEPLOY_PROCESS_CONCURRENCY 1
  --process-max-instances DEPLOY_PROCESS_MAX_INSTANCES 20
  --upload-memory    DEPLOY_UPLOAD_MEMORY          256Mi
  --upload-cpu       DEPLOY_UPLOAD_CPU             (platform default for the memory)
  --upload-timeout   DEPLOY_UPLOAD_TIMEOUT         10s
  --upload-concurrency DEPLOY_UPLOAD_CONCURRENCY   (platform default)
  --upload-max-instances DEPLOY_UPLOAD_MAX_INSTANCES 20
  --notify-memory    DEPLOY_NOTIFY_MEMORY          256Mi
  --notify-cpu       DEPLOY_NOTIFY_CPU             (platform default for the memory)
  --notify-timeout   DEPLOY_NOTIFY_TIMEOUT         30s
  --notify-concurrency DEPLOY_NOTIFY_CONCURRENCY   (platform default)
  --notify-max-instances DEPLOY_NOTIFY_MAX_INSTANCES 10
  --cascade-memory   DEPLOY_CASCADE_MEMORY         256Mi
  --cascade-cpu      DEPLOY_CASCADE_CPU            (platform default for the memory)
  --cascade-timeout  DEPLOY_CASCADE_TIMEOUT        60s
  --cascade-concurrency DEPLOY_CASCADE_CONCURRENCY (platform default)
  --cascade-max-instances DEPLOY_CASCADE_MAX_INSTANCES 10
  --images-memory    DEPLOY_IMAGES_MEMORY          256Mi
  --images-cpu       DEPLOY_IMAGES_CPU             (platform default for the memory)
  --images-timeout   DEPLOY_IMAGES_TIMEOUT         10s
  --images-concurrency DEPLOY_IMAGES_CONCURRENCY   (platform default)
  --images-max-instances DEPLOY_IMAGES_MAX_INSTANCES 20

Function settings: these PIXELPIPE_* variables, when set in the environment of this script, are
passed to all five functions: PIXELPIPE_VARIANTS, PIXELPIPE_PROFILES, PIXELPIPE_DEFAULT_PROFILE, PIXELPIPE_MAX_INPUT_BYTES,
PIXELPIPE_MAX_INPUT_PIXELS, PIXELPIPE_MAX_FRAMES, PIXELPIPE_ALLOWED_TYPES,
PIXELPIPE_UPLOAD_EXPIRY_SECONDS, PIXELPIPE_CACHE_CONTROL, PIXELPIPE_STRIP_METADATA,
PIXELPIPE_WEBP_EFFORT, PIXELPIPE_AVIF_EFFORT, PIXELPIPE_PLACEHOLDER, PIXELPIPE_MAX_ATTEMPTS,
PIXELPIPE_MAX_EVENT_AGE_SECONDS, PIXELPIPE_STATUS_URL_BASE, PIXELPIPE_PUBLIC_BASE_URL,
PIXELPIPE_SOURCE, and the analysis settings PIXELPIPE_ANALYZER, PIXELPIPE_ANALYSES,
PIXELPIPE_MODERATION, PIXELPIPE_MODERATION_MIN_CONFIDENCE, PIXELPIPE_ANALYSIS_REQUIRED,
PIXELPIPE_ANALYSIS_BUDGET_MS, PIXELPIPE_FACE_DESCRIPTORS. PIXELPIPE_ANALYZER=vision also enables
vision.googleapis.com (and grants nothing: images:annotate with inline content needs no IAM role;
the process service account's own project is billed). PIXELPIPE_{ORIGINALS,VARIANTS,MANIFESTS,STATE}_PREFIX
also change the IAM conditions, the notification prefix and the lifecycle rules.
EOF
}

FORWARDED_ENV=(
  PIXELPIPE_VARIANTS PIXELPIPE_PROFILES PIXELPIPE_DEFAULT_PROFILE PIXELPIPE_MAX_INPUT_BYTES PIXELPIPE_MAX_INPUT_PIXELS PIXELPIPE_MAX_FRAMES
  PIXELPIPE_ALLOWED_TYPES PIXELPIPE_UPLOAD_EXPIRY_SECONDS PIXELPIPE_CACHE_CONTROL
  PIXELPIPE_STRIP_METADATA PIXELPIPE_WEBP_EFFORT PIXELPIPE_AVIF_EFFORT PIXELPIPE_PLACEHOLDER
  PIXELPIPE_MAX_ATTEMPTS PIXELPIPE_MAX_EVENT_AGE_SECONDS PIXELPIPE_STATUS_URL_BASE
  PIXELPIPE_PUBLIC_BASE_URL PIXELPIPE_SOURCE
  PIXELPIPE_ANALYZER PIXELPIPE_ANALYSES PIXELPIPE_MODERATION PIXELPIPE_MODERATION_MIN_CONFIDENCE
  PIXELPIPE_ANALYSIS_REQUIRED PIXELPIPE_ANALYSIS_BUDGET_MS PIXELPIPE_FACE_DESCRIPTORS
)

REQUIRED_SERVICES=(
  cloudfunctions.googleapis.com
  run.googleapis.com
  eventarc.googleapis.com
  pubsub.googleapis.com
  storage.googleapis.com
  iam.googleapis.com
  cloudbuild.googleapis.com
  artifactregistry.googleapis.com
  iamcredentials.googleapis.com
)

RUNTIME=nodejs22
STORAGE_FINALIZED=google.cloud.storage.object.v1.finalized
STORAGE_DELETED=google.cloud.storage.object.v1.deleted

PROJECT=""
REGION=""
NAME=pixelpipe
CORS_ORIGINS=""
JWKS_URL=${PIXELPIPE_JWKS_URL:-}
JWT_ISSUER=${PIXELPIPE_JWT_ISSUER:-}
JWT_AUDIENCE=${PIXELPIPE_JWT_AUDIENCE:-}
ORIGINALS_BUCKET=""
VARIANTS_BUCKET=""
BUCKET_LOCATION=""
SOURCE_DIR=dist/gcp
SKIP_BUILD=0
LOG_LEVEL=${PIXELPIPE_LOG_LEVEL:-info}
MAX_DELIVERY_ATTEMPTS=10
BUILD_SERVICE_ACCOUNT=""

PROCESS_MEMORY=${DEPLOY_PROCESS_MEMORY:-1Gi}
PROCESS_CPU=${DEPLOY_PROCESS_CPU:-1}
PROCESS_TIMEOUT=${DEPLOY_PROCESS_TIMEOUT:-120s}
PROCESS_CONCURRENCY=${DEPLOY_PROCESS_CONCURRENCY:-1}
PROCESS_MAX_INSTANCES=${DEPLOY_PROCESS_MAX_INSTANCES:-20}
UPLOAD_MEMORY=${DEPLOY_UPLOAD_MEMORY:-256Mi}
UPLOAD_CPU=${DEPLOY_UPLOAD_CPU:-}
UPLOAD_TIMEOUT=${DEPLOY_UPLOAD_TIMEOUT:-10s}
UPLOAD_CONCURRENCY=${DEPLOY_UPLOAD_CONCURRENCY:-}
UPLOAD_MAX_INSTANCES=${DEPLOY_UPLOAD_MAX_INSTANCES:-20}
NOTIFY_MEMORY=${DEPLOY_NOTIFY_MEMORY:-256Mi}
NOTIFY_CPU=${DEPLOY_NOTIFY_CPU:-}
NOTIFY_TIMEOUT=${DEPLOY_NOTIFY_TIMEOUT:-30s}
NOTIFY_CONCURRENCY=${DEPLOY_NOTIFY_CONCURRENCY:-}
NOTIFY_MAX_INSTANCES=${DEPLOY_NOTIFY_MAX_INSTANCES:-10}
CASCADE_MEMORY=${DEPLOY_CASCADE_MEMORY:-256Mi}
CASCADE_CPU=${DEPLOY_CASCADE_CPU:-}
CASCADE_TIMEOUT=${DEPLOY_CASCADE_TIMEOUT:-60s}
CASCADE_CONCURRENCY=${DEPLOY_CASCADE_CONCURRENCY:-}
CASCADE_MAX_INSTANCES=${DEPLOY_CASCADE_MAX_INSTANCES:-10}
IMAGES_MEMORY=${DEPLOY_IMAGES_MEMORY:-256Mi}
IMAGES_CPU=${DEPLOY_IMAGES_CPU:-}
IMAGES_TIMEOUT=${DEPLOY_IMAGES_TIMEOUT:-10s}
IMAGES_CONCURRENCY=${DEPLOY_IMAGES_CONCURRENCY:-}
IMAGES_MAX_INSTANCES=${DEPLOY_IMAGES_MAX_INSTANCES:-20}

pp_option_flag() {
  case $1 in
    --dry-run) PP_DRY_RUN=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --verbose) PP_VERBOSE=1 ;;
    *) return 1 ;;
  esac
}

pp_option_var() {
  case $1 in
    --project) echo PROJECT ;;
    --region) echo REGION ;;
    --name) echo NAME ;;
    --cors-origins) echo CORS_ORIGINS ;;
    --jwks-url) echo JWKS_URL ;;
    --jwt-issuer) echo JWT_ISSUER ;;
    --jwt-audience) echo JWT_AUDIENCE ;;
    --originals-bucket) echo ORIGINALS_BUCKET ;;
    --variants-bucket) echo VARIANTS_BUCKET ;;
    --bucket-location) echo BUCKET_LOCATION ;;
    --source-dir) echo SOURCE_DIR ;;
    --log-level) echo LOG_LEVEL ;;
    --max-delivery-attempts) echo MAX_DELIVERY_ATTEMPTS ;;
    --build-service-account) echo BUILD_SERVICE_ACCOUNT ;;
    --process-memory) echo PROCESS_MEMORY ;;
    --process-cpu) echo PROCESS_CPU ;;
    --process-timeout) echo PROCESS_TIMEOUT ;;
    --process-concurrency) echo PROCESS_CONCURRENCY ;;
    --process-max-instances) echo PROCESS_MAX_INSTANCES ;;
    --upload-memory) echo UPLOAD_MEMORY ;;
    --upload-cpu) echo UPLOAD_CPU ;;
    --upload-timeout) echo UPLOAD_TIMEOUT ;;
    --upload-concurrency) echo UPLOAD_CONCURRENCY ;;
    --upload-max-instances) echo UPLOAD_MAX_INSTANCES ;;
    --notify-memory) echo NOTIFY_MEMORY ;;
    --notify-cpu) echo NOTIFY_CPU ;;
    --notify-timeout) echo NOTIFY_TIMEOUT ;;
    --notify-concurrency) echo NOTIFY_CONCURRENCY ;;
    --notify-max-instances) echo NOTIFY_MAX_INSTANCES ;;
    --cascade-memory) echo CASCADE_MEMORY ;;
    --cascade-cpu) echo CASCADE_CPU ;;
    --cascade-timeout) echo CASCADE_TIMEOUT ;;
    --cascade-concurrency) echo CASCADE_CONCURRENCY ;;
    --cascade-max-instances) echo CASCADE_MAX_INSTANCES ;;
    --images-memory) echo IMAGES_MEMORY ;;
    --images-cpu) echo IMAGES_CPU ;;
    --images-timeout) echo IMAGES_TIMEOUT ;;
    --images-concurrency) echo IMAGES_CONCURRENCY ;;
    --images-max-instances) echo IMAGES_MAX_INSTANCES ;;
  esac
}

pp_parse_options "$@"

[[ -n $PROJECT ]] || pp_die "--project is required"
[[ -n $REGION ]] || pp_die "--region is required"
[[ -n $JWKS_URL ]] || pp_die "--jwks-url is required (deployments always use PIXELPIPE_AUTH_MODE=jwt)"
[[ -n $JWT_ISSUER ]] || pp_die "--jwt-issuer is required (deployments always use PIXELPIPE_AUTH_MODE=jwt)"
[[ -n $JWT_AUDIENCE ]] || pp_die "--jwt-audience is required (deployments always use PIXELPIPE_AUTH_MODE=jwt)"
[[ $JWKS_URL == https://* ]] || pp_die "--jwks-url must be an https:// URL"
if ! [[ $MAX_DELIVERY_ATTEMPTS =~ ^[0-9]+$ ]] || ((MAX_DELIVERY_ATTEMPTS < 5 || MAX_DELIVERY_ATTEMPTS > 100)); then
  pp_die "--max-delivery-attempts must be 5..100"
fi
case $LOG_LEVEL in debug | info | warn | error) ;; *) pp_die "--log-level must be debug, info, warn or error" ;; esac
# Cloud Vision is called by the process function with its own service account, inline image bytes,
# billed to this project: the API must be enabled, and no IAM role is involved (Vision's images:annotate
# checks none for inline content). Nothing at all when analysis is off or embedded.
case ${PIXELPIPE_ANALYZER:-none} in
  vision) REQUIRED_SERVICES+=(vision.googleapis.com) ;;
  none | embedded) ;;
  rekognition) pp_die "PIXELPIPE_ANALYZER=rekognition is an AWS service; on GCP use vision, embedded or none" ;;
  *) pp_die "PIXELPIPE_ANALYZER must be none, embedded or vision" ;;
esac
for v in PROCESS UPLOAD NOTIFY CASCADE IMAGES; do
  mi="${v}_MAX_INSTANCES" to="${v}_TIMEOUT" co="${v}_CONCURRENCY" me="${v}_MEMORY" cp="${v}_CPU"
  [[ ${!mi} =~ ^[1-9][0-9]*$ ]] || pp_die "$mi must be a positive integer (got '${!mi}')"
  [[ ${!to} =~ ^[1-9][0-9]*s$ ]] || pp_die "$to must look like 120s (got '${!to}')"
  [[ -z ${!co} || ${!co} =~ ^[1-9][0-9]*$ ]] || pp_die "$co must be a positive integer (got '${!co}')"
  [[ ${!me} =~ ^[1-9][0-9]*(Mi|Gi|M|G)$ ]] || pp_die "$me must look like 256Mi or 1Gi (got '${!me}')"
  [[ -z ${!cp} || ${!cp} =~ ^[0-9.]+m?$ ]] || pp_die "$cp must look like 1, 0.5 or 500m (got '${!cp}')"
done

pp_init

# Remove spaces around the commas; reject '*' and anything that is not a plain origin.
CORS_ORIGINS=$(printf '%s' "$CORS_ORIGINS" | tr -d '[:space:]')
pp_json validate-origins "$CORS_ORIGINS" || pp_die "invalid --cors-origins"

pp_compute_names
BUCKET_LOCATION=${BUCKET_LOCATION:-$REGION}
TRIGGER_LOCATION=$(pp_lower "$BUCKET_LOCATION")

# A --source-dir given by the caller is relative to where they ran the script; the default to the repo.
if [[ -n $SOURCE_DIR && $SOURCE_DIR != /* && $SOURCE_DIR != dist/gcp ]]; then
  SOURCE_DIR="$PWD/$SOURCE_DIR"
fi
cd "$PP_REPO_ROOT"
[[ $PP_DRY_RUN == 1 ]] && pp_note "dry run: nothing is executed; every lookup assumes the resource does not exist yet"

# ---------------------------------------------------------------------------------------------------
# 0. Build
# ---------------------------------------------------------------------------------------------------
if [[ $SKIP_BUILD == 0 ]]; then
  pp_run npm run build
fi
for fn in upload images process notify cascade; do
  if [[ ! -f "$SOURCE_DIR/$fn/index.js" || ! -f "$SOURCE_DIR/$fn/package.json" ]]; then
    if [[ $PP_DRY_RUN == 1 ]]; then
      pp_note "warning: $SOURCE_DIR/$fn/{index.js,package.json} not built yet"
    else
      pp_die "$SOURCE_DIR/$fn/index.js or package.json missing: run npm run build (or drop --skip-build)"
    fi
  fi
done

# ---------------------------------------------------------------------------------------------------
# 1. APIs
# ---------------------------------------------------------------------------------------------------
pp_query ENABLED_SERVICES "" gcloud services list --enabled --project="$PROJECT" --format='value(config.name)'
missing_services=()
for s in "${REQUIRED_SERVICES[@]}"; do
  grep -qxF "$s" <<<"$ENABLED_SERVICES" || missing_services+=("$s")
done
if ((${#missing_services[@]})); then
  pp_run gcloud services enable "${missing_services[@]}" --project="$PROJECT"
else
  pp_note "APIs: all enabled"
fi

pp_query PROJECT_NUMBER PROJECT_NUMBER gcloud projects describe "$PROJECT" --format='value(projectNumber)'
# Also creates the Cloud Storage service agent if the project never had one.
pp_query STORAGE_AGENT "service-$PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com" \
  gcloud storage service-agent --project="$PROJECT"
STORAGE_AGENT=$(printf '%s' "$STORAGE_AGENT" | tr -d '[:space:]')
[[ -n $PROJECT_NUMBER && -n $STORAGE_AGENT ]] || pp_die "could not read the project number / storage service agent"

# ---------------------------------------------------------------------------------------------------
# 2. Service accounts (infra/gcp/iam.json: serviceAccounts)
# ---------------------------------------------------------------------------------------------------
pp_load_service_accounts
while IFS=$'\x1f' read -r key id email display desc; do
  if pp_lookup DISCARD gcloud iam service-accounts describe "$email" --project="$PROJECT" --format=json; then
    pp_note "service account $email: exists"
  else
    pp_run_quiet gcloud iam service-accounts create "$id" --project="$PROJECT" \
      --display-name="$display" --description="$desc"
  fi
done <"$PP_TMP/service-accounts"
SA_UPLOAD=$(pp_sa_email upload)
SA_PROCESS=$(pp_sa_email process)
SA_NOTIFY=$(pp_sa_email notify)
SA_CASCADE=$(pp_sa_email cascade)
SA_IMAGES=$(pp_sa_email images)
SA_TRIGGER=$(pp_sa_email trigger)

# ---------------------------------------------------------------------------------------------------
# 3. Buckets: private (uniform bucket-level access, public access prevention), CORS, lifecycle
# ---------------------------------------------------------------------------------------------------
pp_vars
render_bucket_files() { # key lifecycle-template
  local key=$1 lifecycle=$2
  pp_json cors "$PP_REPO_ROOT/infra/gcp/cors.json" "$key" "$CORS_ORIGINS" >"$PP_TMP/cors-$key.json"
  pp_json render "$PP_REPO_ROOT/infra/gcp/$lifecycle" "${PP_VARS[@]}" >"$PP_TMP/lifecycle-$key.json"
  pp_show_file "CORS of the $key bucket" "$PP_TMP/cors-$key.json"
  pp_show_file "lifecycle of the $key bucket" "$PP_TMP/lifecycle-$key.json"
}

ensure_bucket() { # bucket key
  local bucket=$1 key=$2 desc changes
  local cors="$PP_TMP/cors-$key.json" lifecycle="$PP_TMP/lifecycle-$key.json" has_cors=0
  [[ $(tr -d '[:space:]' <"$cors") != "[]" ]] && has_cors=1
  if pp_lookup desc gcloud storage buckets describe "gs://$bucket" --project="$PROJECT" --format=json; then
    # An existing bucket keeps its location; the storage trigger must be created there.
    if [[ $key == originals ]]; then
      local location
      location=$(printf '%s' "$desc" | pp_json get location)
      [[ -n $location ]] && TRIGGER_LOCATION=$(pp_lower "$location")
    fi
    changes=$(printf '%s' "$desc" | pp_json bucket-diff "$cors" "$lifecycle")
    if [[ -z $changes ]]; then
      pp_note "bucket gs://$bucket: up to date"
      return 0
    fi
    local update=(gcloud storage buckets update "gs://$bucket" --project="$PROJECT")
    [[ " $changes " == *" ubla "* ]] && update+=(--uniform-bucket-level-access)
    [[ " $changes " == *" pap "* ]] && update+=(--public-access-prevention)
    if [[ " $changes " == *" cors "* ]]; then
      if ((has_cors)); then update+=(--cors-file="$cors"); else update+=(--clear-cors); fi
    fi
    [[ " $changes " == *" lifecycle "* ]] && update+=(--lifecycle-file="$lifecycle")
    pp_run_quiet "${update[@]}"
  else
    pp_run_quiet gcloud storage buckets create "gs://$bucket" --project="$PROJECT" --location="$BUCKET_LOCATION" \
      --uniform-bucket-level-access --public-access-prevention --lifecycle-file="$lifecycle"
    # `buckets create` has no CORS flag.
    if ((has_cors)); then
      pp_run_quiet gcloud storage buckets update "gs://$bucket" --project="$PROJECT" --cors-file="$cors"
    fi
  fi
}

render_bucket_files originals lifecycle-originals.json
render_bucket_files variants lifecycle-variants.json
[[ -n $CORS_ORIGINS ]] || pp_note "warning: no --cors-origins: browsers cannot PUT to the signed upload URLs"
ensure_bucket "$ORIGINALS_BUCKET" originals
ensure_bucket "$VARIANTS_BUCKET" variants

# ---------------------------------------------------------------------------------------------------
# 4. Topics and dead-letter holding subscriptions
# ---------------------------------------------------------------------------------------------------
ensure_topic() {
  if pp_lookup DISCARD gcloud pubsub topics describe "$1" --project="$PROJECT" --format=json; then
    pp_note "topic $1: exists"
  else
    pp_run_quiet gcloud pubsub topics create "$1" --project="$PROJECT"
  fi
}
for t in "$TOPIC_EVENTS" "$TOPIC_MANIFESTS" "${DLQ_TOPICS[@]}"; do
  ensure_topic "$t"
done
for t in "${DLQ_TOPICS[@]}"; do
  if pp_lookup DISCARD gcloud pubsub subscriptions describe "$t-hold" --project="$PROJECT" --format=json; then
    pp_note "subscription $t-hold: exists"
  else
    pp_run_quiet gcloud pubsub subscriptions create "$t-hold" --project="$PROJECT" --topic="$t" \
      --message-retention-duration=7d --expiration-period=never
  fi
done

# ---------------------------------------------------------------------------------------------------
# 5. IAM: custom roles (infra/gcp/iam.json: customRoles), then bindings (iam.json: bindings)
# ---------------------------------------------------------------------------------------------------
# A custom role is created, brought back to its declared title/description/permissions/stage when it
# drifted, or undeleted when a teardown less than 7 days ago deleted it (its ID stays reserved for
# about 44 days after deletion, so creating it again would fail).
ensure_custom_role() { # id title description permissions-csv stage
  local id=$1 title=$2 description=$3 permissions=$4 stage=$5 role="" diff
  if pp_lookup role gcloud iam roles describe "$id" --project="$PROJECT" --format=json; then
    diff=$(printf '%s' "$role" | pp_json role-diff "$title" "$description" "$permissions" "$stage")
    if [[ " $diff " == *" deleted "* ]]; then
      pp_run_quiet gcloud iam roles undelete "$id" --project="$PROJECT"
      diff=${diff/deleted/}
    fi
    if [[ -z ${diff// /} ]]; then
      [[ $PP_VERBOSE == 1 ]] && pp_note "custom role $id: up to date"
      return 0
    fi
    pp_note "custom role $id: updating ($(printf '%s' "$diff" | xargs))"
    pp_run_quiet gcloud iam roles update "$id" --project="$PROJECT" --title="$title" \
      --description="$description" --permissions="$permissions" --stage="$stage"
  else
    pp_run_quiet gcloud iam roles create "$id" --project="$PROJECT" --title="$title" \
      --description="$description" --permissions="$permissions" --stage="$stage" ||
      pp_die "could not create custom role $id (an ID deleted more than 7 days ago stays reserved for about 37 more days: deploy under another --name, or wait)"
  fi
}

pp_vars
pp_json custom-roles "$IAM_FILE" "${PP_VARS[@]}" >"$PP_TMP/custom-roles"
while IFS=$'\x1f' read -r _ id title description permissions stage; do
  ensure_custom_role "$id" "$title" "$description" "$permissions" "$stage"
done <"$PP_TMP/custom-roles"

ensure_binding() { # type resource member role [title expression description]
  local type=$1 resource=$2 member=$3 role=$4 title=${5:-} expression=${6:-} description=${7:-} policy
  case $member in allUsers | allAuthenticatedUsers) pp_die "refusing to bind $member" ;; esac
  pp_policy_commands "$type" "$resource"
  if pp_lookup policy "${PP_GET_POLICY[@]}" &&
    printf '%s' "$policy" | pp_json has-binding "$member" "$role" "$title"; then
    [[ $PP_VERBOSE == 1 ]] && pp_note "IAM $type $resource: $member has $role${title:+ ($title)}"
    return 0
  fi
  local add=("${PP_ADD_BINDING[@]}" --member="$member" --role="$role")
  if [[ -n $title ]]; then
    add+=(--condition="expression=$expression,title=$title,description=$description")
  elif [[ $type == project || $type == bucket ]]; then
    # Without it gcloud refuses (non-interactive) to add to a policy that already has conditions.
    add+=(--condition=None)
  fi
  pp_run_retry "${add[@]}"
}

apply_bindings() { # phase
  pp_vars
  pp_json bindings "$IAM_FILE" "$1" "${PP_VARS[@]}" >"$PP_TMP/bindings-$1"
  local type resource member role title expression description
  while IFS=$'\x1f' read -r type resource member role title expression description; do
    ensure_binding "$type" "$resource" "$member" "$role" "$title" "$expression" "$description"
  done <"$PP_TMP/bindings-$1"
}

apply_bindings pre

# ---------------------------------------------------------------------------------------------------
# 6. GCS -> Pub/Sub notification: variants bucket, manifests/ prefix, OBJECT_FINALIZE only.
#    `notifications create` always adds another config, so create only if an equal one is missing.
# ---------------------------------------------------------------------------------------------------
MANIFESTS_TOPIC_PATH="projects/$PROJECT/topics/$TOPIC_MANIFESTS"
existing=""
notifications=""
if pp_lookup notifications gcloud storage buckets notifications list "gs://$VARIANTS_BUCKET" --project="$PROJECT" --format=json; then
  existing=$(printf '%s' "$notifications" | pp_json notification-find "$MANIFESTS_TOPIC_PATH" "$MANIFESTS_PREFIX" OBJECT_FINALIZE)
  to_topic=$(printf '%s' "$notifications" | pp_json notification-names "$MANIFESTS_TOPIC_PATH")
  if [[ -n $to_topic && $(grep -c . <<<"$to_topic") -gt $(grep -c . <<<"$existing") ]]; then
    pp_note "warning: gs://$VARIANTS_BUCKET has other notifications to $TOPIC_MANIFESTS (different prefix/events) that deploy leaves alone:"
    pp_note "$to_topic"
  fi
fi
if [[ -n $existing ]]; then
  pp_note "notification gs://$VARIANTS_BUCKET -> $TOPIC_MANIFESTS: exists (id $(printf '%s' "$existing" | tr '\n' ' '))"
else
  pp_run_quiet gcloud storage buckets notifications create "gs://$VARIANTS_BUCKET" --project="$PROJECT" \
    --topic="$MANIFESTS_TOPIC_PATH" --event-types=OBJECT_FINALIZE --object-prefix="$MANIFESTS_PREFIX" \
    --payload-format=json --skip-topic-setup
fi

# ---------------------------------------------------------------------------------------------------
# 7. Functions (gen 2). Environment through --env-vars-file: values may contain commas (CORS list,
#    PIXELPIPE_VARIANTS JSON) that --set-env-vars would split.
# ---------------------------------------------------------------------------------------------------
# NODE_ENV=production: functions-framework's body parser otherwise answers malformed JSON with an
# HTML page that includes a stack trace (test/faults/upload-framework.int.test.ts).
common_env=(
  "NODE_ENV=production"
  # The notifier addresses its topic as projects/<project>/topics/<name> without asking the metadata server.
  "GOOGLE_CLOUD_PROJECT=$PROJECT"
  "PIXELPIPE_ORIGINALS_BUCKET=$ORIGINALS_BUCKET"
  "PIXELPIPE_VARIANTS_BUCKET=$VARIANTS_BUCKET"
  "PIXELPIPE_ORIGINALS_PREFIX=$ORIGINALS_PREFIX"
  "PIXELPIPE_VARIANTS_PREFIX=$VARIANTS_PREFIX"
  "PIXELPIPE_MANIFESTS_PREFIX=$MANIFESTS_PREFIX"
  "PIXELPIPE_STATE_PREFIX=$STATE_PREFIX"
  "PIXELPIPE_TOPIC=$TOPIC_EVENTS"
  "PIXELPIPE_AUTH_MODE=jwt"
  "PIXELPIPE_JWKS_URL=$JWKS_URL"
  "PIXELPIPE_JWT_ISSUER=$JWT_ISSUER"
  "PIXELPIPE_JWT_AUDIENCE=$JWT_AUDIENCE"
  "PIXELPIPE_CORS_ORIGINS=$CORS_ORIGINS"
  "PIXELPIPE_LOG_LEVEL=$LOG_LEVEL"
)
for v in "${FORWARDED_ENV[@]}"; do
  if [[ -n ${!v+set} ]]; then common_env+=("$v=${!v}"); fi
done

# functions-framework does not tell a handler its deadline: each function learns its own --timeout
# (validated above as <N>s) and stops retrying in time to record the attempt before it is killed.
pp_json env-yaml "${common_env[@]}" "PIXELPIPE_FUNCTION_TIMEOUT_SECONDS=${IMAGES_TIMEOUT%s}" \
  "PIXELPIPE_SIGNER_SERVICE_ACCOUNT=$SA_IMAGES" >"$PP_TMP/env-images.yaml"
pp_json env-yaml "${common_env[@]}" "PIXELPIPE_FUNCTION_TIMEOUT_SECONDS=${PROCESS_TIMEOUT%s}" "MALLOC_ARENA_MAX=2" >"$PP_TMP/env-process.yaml"
pp_json env-yaml "${common_env[@]}" "PIXELPIPE_FUNCTION_TIMEOUT_SECONDS=${NOTIFY_TIMEOUT%s}" >"$PP_TMP/env-notify.yaml"
pp_json env-yaml "${common_env[@]}" "PIXELPIPE_FUNCTION_TIMEOUT_SECONDS=${CASCADE_TIMEOUT%s}" >"$PP_TMP/env-cascade.yaml"

deploy_function() { # fn name sa memory cpu timeout concurrency max-instances [extra flags...]
  local fn=$1 name=$2 sa=$3 memory=$4 cpu=$5 timeout=$6 concurrency=$7 max=$8
  shift 8
  pp_show_file "environment of $name" "$PP_TMP/env-$fn.yaml"
  local cmd=(gcloud functions deploy "$name" --gen2 --runtime="$RUNTIME" --region="$REGION" --project="$PROJECT"
    --source="$SOURCE_DIR/$fn" --entry-point="$fn" --service-account="$sa"
    --env-vars-file="$PP_TMP/env-$fn.yaml" --memory="$memory")
  [[ -n $cpu ]] && cmd+=(--cpu="$cpu")
  cmd+=(--timeout="$timeout")
  [[ -n $concurrency ]] && cmd+=(--concurrency="$concurrency")
  cmd+=(--max-instances="$max")
  [[ -n $BUILD_SERVICE_ACCOUNT ]] && cmd+=(--build-service-account="$BUILD_SERVICE_ACCOUNT")
  cmd+=("$@")
  pp_run "${cmd[@]}"
}

# images: HTTP, deployed before upload, whose statusUrl points at it. Public reachability as for
# upload (section 8): the function verifies the JWT itself.
deploy_function images "$FN_IMAGES" "$SA_IMAGES" "$IMAGES_MEMORY" "$IMAGES_CPU" "$IMAGES_TIMEOUT" \
  "$IMAGES_CONCURRENCY" "$IMAGES_MAX_INSTANCES" \
  --trigger-http --no-allow-unauthenticated --ingress-settings=all
pp_query IMAGES_URL "https://IMAGES_FUNCTION_URL" \
  gcloud functions describe "$FN_IMAGES" --region="$REGION" --project="$PROJECT" --format='value(serviceConfig.uri)'
IMAGES_URL=$(printf '%s' "$IMAGES_URL" | tr -d '[:space:]')

# statusUrl in upload responses: GET /images/{id} of the images function, unless the caller set
# PIXELPIPE_STATUS_URL_BASE (e.g. behind their own domain).
upload_env=("${common_env[@]}")
if [[ -z ${PIXELPIPE_STATUS_URL_BASE+set} ]]; then upload_env+=("PIXELPIPE_STATUS_URL_BASE=${IMAGES_URL%/}/images"); fi
pp_json env-yaml "${upload_env[@]}" "PIXELPIPE_FUNCTION_TIMEOUT_SECONDS=${UPLOAD_TIMEOUT%s}" \
  "PIXELPIPE_SIGNER_SERVICE_ACCOUNT=$SA_UPLOAD" >"$PP_TMP/env-upload.yaml"

# upload: HTTP. --no-allow-unauthenticated keeps allUsers off the service; browsers reach it because
# the Cloud Run invoker IAM check is disabled below, and the function itself verifies the JWT.
deploy_function upload "$FN_UPLOAD" "$SA_UPLOAD" "$UPLOAD_MEMORY" "$UPLOAD_CPU" "$UPLOAD_TIMEOUT" \
  "$UPLOAD_CONCURRENCY" "$UPLOAD_MAX_INSTANCES" \
  --trigger-http --no-allow-unauthenticated --ingress-settings=all

deploy_function process "$FN_PROCESS" "$SA_PROCESS" "$PROCESS_MEMORY" "$PROCESS_CPU" "$PROCESS_TIMEOUT" \
  "$PROCESS_CONCURRENCY" "$PROCESS_MAX_INSTANCES" \
  --trigger-event-filters="type=$STORAGE_FINALIZED" --trigger-event-filters="bucket=$ORIGINALS_BUCKET" \
  --trigger-location="$TRIGGER_LOCATION" --trigger-service-account="$SA_TRIGGER" --retry \
  --no-allow-unauthenticated --ingress-settings=internal-only

deploy_function notify "$FN_NOTIFY" "$SA_NOTIFY" "$NOTIFY_MEMORY" "$NOTIFY_CPU" "$NOTIFY_TIMEOUT" \
  "$NOTIFY_CONCURRENCY" "$NOTIFY_MAX_INSTANCES" \
  --trigger-topic="$TOPIC_MANIFESTS" --trigger-service-account="$SA_TRIGGER" --retry \
  --no-allow-unauthenticated --ingress-settings=internal-only

# cascade: every deletion in the originals bucket (GCS also reports an overwritten generation as
# deleted; the function recognises and ignores those).
deploy_function cascade "$FN_CASCADE" "$SA_CASCADE" "$CASCADE_MEMORY" "$CASCADE_CPU" "$CASCADE_TIMEOUT" \
  "$CASCADE_CONCURRENCY" "$CASCADE_MAX_INSTANCES" \
  --trigger-event-filters="type=$STORAGE_DELETED" --trigger-event-filters="bucket=$ORIGINALS_BUCKET" \
  --trigger-location="$TRIGGER_LOCATION" --trigger-service-account="$SA_TRIGGER" --retry \
  --no-allow-unauthenticated --ingress-settings=internal-only

# ---------------------------------------------------------------------------------------------------
# 8. Public reachability of the upload and images functions without allUsers.
#    Org policies (iam.allowedPolicyMemberDomains, "domain restricted sharing") commonly forbid
#    allUsers bindings, and an allUsers run.invoker grant would also open every future revision to the
#    world by IAM. Disabling Cloud Run's invoker IAM check lets browsers call the HTTPS endpoint while
#    IAM stays closed; authentication is the function's own JWT verification (PIXELPIPE_AUTH_MODE=jwt).
# ---------------------------------------------------------------------------------------------------
for http_fn in "$FN_UPLOAD" "$FN_IMAGES"; do
  invoker_disabled=""
  service_json=""
  if pp_lookup service_json gcloud run services describe "$http_fn" --region="$REGION" --project="$PROJECT" --format=json; then
    invoker_disabled=$(printf '%s' "$service_json" | pp_json get metadata annotations run.googleapis.com/invoker-iam-disabled)
  fi
  if [[ $invoker_disabled == true ]]; then
    pp_note "Cloud Run service $http_fn: invoker IAM check already disabled"
  else
    pp_run_quiet gcloud run services update "$http_fn" --region="$REGION" --project="$PROJECT" --no-invoker-iam-check
  fi
done

# ---------------------------------------------------------------------------------------------------
# 9. Dead-letter policy on the Eventarc-managed subscriptions, then the post-deploy IAM bindings
#    (run.invoker on the event functions, Pub/Sub agent on those subscriptions).
# ---------------------------------------------------------------------------------------------------
trigger_subscription() { # var function-name
  local __var=$1 fn=$2 trigger tname tloc sub
  pp_query trigger "projects/$PROJECT/locations/$REGION/triggers/$fn-TRIGGER_ID" \
    gcloud functions describe "$fn" --region="$REGION" --project="$PROJECT" --format='value(eventTrigger.trigger)'
  [[ $trigger == projects/*/locations/*/triggers/* ]] || pp_die "function $fn has no Eventarc trigger ('$trigger')"
  tname=${trigger##*/}
  tloc=${trigger#*/locations/}
  tloc=${tloc%%/*}
  pp_query sub "projects/$PROJECT/subscriptions/eventarc-$tloc-$tname-sub-ID" \
    gcloud eventarc triggers describe "$tname" --location="$tloc" --project="$PROJECT" \
    --format='value(transport.pubsub.subscription)'
  [[ -n $sub ]] || pp_die "Eventarc trigger $tname has no Pub/Sub subscription"
  printf -v "$__var" '%s' "${sub##*/}"
}

ensure_dead_letter() { # subscription dlq-topic
  local sub=$1 dlq=$2 sub_json=""
  if pp_lookup sub_json gcloud pubsub subscriptions describe "$sub" --project="$PROJECT" --format=json &&
    printf '%s' "$sub_json" | pp_json dead-letter-ok "projects/$PROJECT/topics/$dlq" "$MAX_DELIVERY_ATTEMPTS"; then
    pp_note "subscription $sub: dead-letter policy up to date"
    return 0
  fi
  pp_run_quiet gcloud pubsub subscriptions update "$sub" --project="$PROJECT" \
    --dead-letter-topic="$dlq" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS"
}

trigger_subscription PROCESS_SUBSCRIPTION "$FN_PROCESS"
trigger_subscription NOTIFY_SUBSCRIPTION "$FN_NOTIFY"
trigger_subscription CASCADE_SUBSCRIPTION "$FN_CASCADE"
ensure_dead_letter "$PROCESS_SUBSCRIPTION" "$TOPIC_ORIGINALS_DLQ"
ensure_dead_letter "$NOTIFY_SUBSCRIPTION" "$TOPIC_MANIFESTS_DLQ"
ensure_dead_letter "$CASCADE_SUBSCRIPTION" "$TOPIC_DELETIONS_DLQ"
apply_bindings post

# ---------------------------------------------------------------------------------------------------
# 10. Summary
# ---------------------------------------------------------------------------------------------------
pp_query UPLOAD_URL "https://UPLOAD_FUNCTION_URL" \
  gcloud functions describe "$FN_UPLOAD" --region="$REGION" --project="$PROJECT" --format='value(serviceConfig.uri)'

summary() {
  local done_verb=deployed
  [[ $PP_DRY_RUN == 1 ]] && done_verb="would be deployed (dry run)"
  cat <<EOF

pixelpipe $done_verb ($PROJECT, $REGION, name '$NAME').
  Upload URL:       $UPLOAD_URL
  Images API:       ${IMAGES_URL%/}/images
  Originals bucket: gs://$ORIGINALS_BUCKET
  Variants bucket:  gs://$VARIANTS_BUCKET
  Events topic:     projects/$PROJECT/topics/$TOPIC_EVENTS
  Dead letters:     ${DLQ_TOPICS[*]} (held by <topic>-hold pull subscriptions, 7 days)

Subscribe to completion events (CloudEvents JSON; attributes type, imageId, owner, status), e.g.:
  gcloud pubsub subscriptions create my-app-pixelpipe --project=$PROJECT --topic=$TOPIC_EVENTS \\
    --dead-letter-topic=$TOPIC_EVENTS_DLQ --max-delivery-attempts=$MAX_DELIVERY_ATTEMPTS \\
    [--push-endpoint=https://my-app.example/pixelpipe --push-auth-service-account=SA] \\
    [--message-filter='attributes.status = "ready"']
  gcloud pubsub subscriptions add-iam-policy-binding my-app-pixelpipe --project=$PROJECT \\
    --member=serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com \\
    --role=roles/pubsub.subscriber   # lets Pub/Sub dead-letter from your subscription
EOF
}
if [[ $PP_DRY_RUN == 1 ]]; then
  summary | sed 's/^/# /' >&3
else
  summary
fi
