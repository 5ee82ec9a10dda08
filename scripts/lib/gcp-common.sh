# shellcheck shell=bash
# Shared helpers for scripts/deploy-gcp.sh and scripts/teardown-gcp.sh. Source it; do not run it.
#
# Command runners (all read stdin from /dev/null so that no gcloud prompt can hang a run):
#   pp_run CMD...               a command that changes something. Dry run: printed as "+ CMD" on
#                               stdout and not run. Real run: echoed as "+ CMD" on stderr, then run.
#   pp_run_retry CMD...         pp_run, retried (IAM grants right after creating a service account can
#                               fail until the account has propagated).
#   pp_lookup VAR CMD...        a read-only "describe/list": stdout into VAR, returns 0. Returns 1 when
#                               the thing does not exist (gcloud says NOT_FOUND / 404 / not found).
#                               Any other failure (auth, permission, bad flag) stops the script.
#                               Dry run: printed, not run, returns 1 ("assume nothing exists").
#   pp_query VAR PLACEHOLDER CMD...  a read-only command whose output is required: stdout into VAR;
#                               any failure stops the script. Dry run: printed, VAR=PLACEHOLDER.
#
# Dry-run lines go to file descriptor 3, which pp_init points at the original stdout, so they stay in
# order even when a runner is called inside $(...).

PP_DRY_RUN=${PP_DRY_RUN:-0}
PP_VERBOSE=${PP_VERBOSE:-0}
PP_RETRY_SLEEP=${PP_RETRY_SLEEP:-10}
PP_RETRIES=${PP_RETRIES:-6}
PP_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PP_REPO_ROOT=$(cd "$PP_LIB_DIR/../.." && pwd)
PP_TMP=""

# Never let gcloud stop for a question; every answer is given by flags.
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

pp_init() {
  exec 3>&1
  PP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pixelpipe-gcp.XXXXXX")
  trap 'rm -rf "$PP_TMP"' EXIT
}

pp_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# The option loop both scripts share: `--opt value` and `--opt=value`, `--help`/`-h` (calls the
# script's `usage`). The script defines two lookups, kept as functions so this stays bash 3.2 (no
# associative arrays): `pp_option_flag OPT` sets the flag's variable and returns 0, or returns 1;
# `pp_option_var OPT` prints the variable a value option sets, or nothing for an unknown option.
pp_parse_options() {
  local arg var
  while [[ $# -gt 0 ]]; do
    arg=$1
    if [[ $arg == --*=* ]]; then
      set -- "${arg%%=*}" "${arg#*=}" "${@:2}"
      arg=$1
    fi
    case $arg in
      --help | -h) usage; exit 0 ;;
    esac
    if pp_option_flag "$arg"; then
      shift
      continue
    fi
    var=$(pp_option_var "$arg")
    [[ -n $var ]] || pp_die "unknown option '$arg' (see --help)"
    [[ $# -ge 2 && -n $2 && $2 != --* ]] || pp_die "$arg needs a value"
    printf -v "$var" '%s' "$2"
    shift 2
  done
}

pp_note() {
  if [[ $PP_DRY_RUN == 1 ]]; then
    printf '# %s\n' "$*" >&3
  else
    printf '%s\n' "$*" >&2
  fi
}

pp_quote() {
  local out="" arg
  for arg in "$@"; do
    out+=" $(printf '%q' "$arg")"
  done
  printf '%s' "${out# }"
}

pp_echo_cmd() {
  if [[ $PP_DRY_RUN == 1 ]]; then
    printf '+ %s\n' "$(pp_quote "$@")" >&3
  else
    printf '+ %s\n' "$(pp_quote "$@")" >&2
  fi
}

pp_run() {
  pp_echo_cmd "$@"
  [[ $PP_DRY_RUN == 1 ]] && return 0
  "$@" </dev/null
}

# Like pp_run, but the command's stdout (e.g. the whole IAM policy after add-iam-policy-binding) is
# dropped unless --verbose.
pp_run_quiet() {
  pp_echo_cmd "$@"
  [[ $PP_DRY_RUN == 1 ]] && return 0
  if [[ $PP_VERBOSE == 1 ]]; then
    "$@" </dev/null
  else
    "$@" </dev/null >/dev/null
  fi
}

pp_run_retry() {
  pp_echo_cmd "$@"
  [[ $PP_DRY_RUN == 1 ]] && return 0
  local attempt=1
  while true; do
    if [[ $PP_VERBOSE == 1 ]]; then
      "$@" </dev/null && return 0
    else
      "$@" </dev/null >/dev/null && return 0
    fi
    if ((attempt >= PP_RETRIES)); then
      pp_die "command failed $attempt times: $(pp_quote "$@")"
    fi
    printf 'retrying in %ss (attempt %s of %s)...\n' "$PP_RETRY_SLEEP" "$((attempt + 1))" "$PP_RETRIES" >&2
    sleep "$PP_RETRY_SLEEP"
    attempt=$((attempt + 1))
  done
}

pp_lookup() {
  local __var=$1
  shift
  printf -v "$__var" '%s' ""
  if [[ $PP_DRY_RUN == 1 ]]; then
    pp_echo_cmd "$@"
    return 1
  fi
  [[ $PP_VERBOSE == 1 ]] && printf '? %s\n' "$(pp_quote "$@")" >&2
  local out="$PP_TMP/lookup.out" err="$PP_TMP/lookup.err" rc=0
  "$@" </dev/null >"$out" 2>"$err" || rc=$?
  if ((rc == 0)); then
    printf -v "$__var" '%s' "$(cat "$out")"
    return 0
  fi
  if grep -Eqi 'NOT_FOUND|ResourceNotFound|not found|does not exist|Cannot find|404' "$err"; then
    return 1
  fi
  cat "$err" >&2
  pp_die "lookup failed (exit $rc): $(pp_quote "$@")"
}

pp_query() {
  local __var=$1 placeholder=$2
  shift 2
  if [[ $PP_DRY_RUN == 1 ]]; then
    pp_echo_cmd "$@"
    printf -v "$__var" '%s' "$placeholder"
    return 0
  fi
  [[ $PP_VERBOSE == 1 ]] && printf '? %s\n' "$(pp_quote "$@")" >&2
  local out="$PP_TMP/query.out" rc=0
  "$@" </dev/null >"$out" || rc=$?
  ((rc == 0)) || pp_die "query failed (exit $rc): $(pp_quote "$@")"
  printf -v "$__var" '%s' "$(cat "$out")"
}

# node helper for all JSON handling (see scripts/lib/gcp-json.cjs).
pp_json() {
  node "$PP_LIB_DIR/gcp-json.cjs" "$@"
}

# Show a generated file in dry-run output (as comments) so the reviewer sees what would be applied.
pp_show_file() {
  local label=$1 file=$2
  [[ $PP_DRY_RUN == 1 ]] || return 0
  printf '# %s (%s):\n' "$label" "$file" >&3
  sed 's/^/#   /' "$file" >&3
}

pp_lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

# Sets every resource name from PROJECT, REGION, NAME and the optional bucket overrides.
# Deploy and teardown both call this so that they always agree on names.
# shellcheck disable=SC2034 # globals for the calling script
pp_compute_names() {
  [[ $NAME =~ ^[a-z][a-z0-9-]{0,20}[a-z0-9]$ ]] ||
    pp_die "--name must be 2-22 characters of [a-z0-9-], start with a letter and not end with '-' (got '$NAME')"
  [[ $PROJECT =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || pp_die "--project does not look like a project id: '$PROJECT'"
  [[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || pp_die "--region does not look like a region: '$REGION'"

  FN_UPLOAD="$NAME-upload"
  FN_PROCESS="$NAME-process"
  FN_NOTIFY="$NAME-notify"
  FN_CASCADE="$NAME-cascade"
  FN_IMAGES="$NAME-images"

  TOPIC_EVENTS="$NAME-events"
  TOPIC_MANIFESTS="$NAME-manifests"
  TOPIC_EVENTS_DLQ="$NAME-events-dlq"
  TOPIC_MANIFESTS_DLQ="$NAME-manifests-dlq"
  TOPIC_ORIGINALS_DLQ="$NAME-originals-dlq"
  TOPIC_DELETIONS_DLQ="$NAME-deletions-dlq"
  # Pull subscriptions that keep dead-lettered messages (a topic without subscription drops them).
  DLQ_TOPICS=("$TOPIC_EVENTS_DLQ" "$TOPIC_MANIFESTS_DLQ" "$TOPIC_ORIGINALS_DLQ" "$TOPIC_DELETIONS_DLQ")

  ORIGINALS_BUCKET=${ORIGINALS_BUCKET:-"$PROJECT-$NAME-originals"}
  VARIANTS_BUCKET=${VARIANTS_BUCKET:-"$PROJECT-$NAME-variants"}
  local b
  for b in "$ORIGINALS_BUCKET" "$VARIANTS_BUCKET"; do
    [[ ${#b} -le 63 && $b =~ ^[a-z0-9][a-z0-9_-]*[a-z0-9]$ && $b != goog* ]] ||
      pp_die "bucket name '$b' is invalid (3-63 chars of [a-z0-9_-]); pass --originals-bucket/--variants-bucket"
  done
  [[ $ORIGINALS_BUCKET != "$VARIANTS_BUCKET" ]] || pp_die "originals and variants buckets must differ"

  ORIGINALS_PREFIX=${PIXELPIPE_ORIGINALS_PREFIX:-originals/}
  VARIANTS_PREFIX=${PIXELPIPE_VARIANTS_PREFIX:-variants/}
  MANIFESTS_PREFIX=${PIXELPIPE_MANIFESTS_PREFIX:-manifests/}
  STATE_PREFIX=${PIXELPIPE_STATE_PREFIX:-state/}

  IAM_FILE="$PP_REPO_ROOT/infra/gcp/iam.json"
}

# key=value arguments for gcp-json.cjs placeholders. $1/$2 = values for the Eventarc-managed
# subscriptions (only known after the functions exist).
pp_vars() {
  PP_VARS=(
    "name=$NAME"
    "project=$PROJECT"
    "region=$REGION"
    "projectNumber=${PROJECT_NUMBER:-PROJECT_NUMBER}"
    "storageAgent=${STORAGE_AGENT:-STORAGE_SERVICE_AGENT}"
    "originalsBucket=$ORIGINALS_BUCKET"
    "variantsBucket=$VARIANTS_BUCKET"
    "originalsPrefix=$ORIGINALS_PREFIX"
    "variantsPrefix=$VARIANTS_PREFIX"
    "manifestsPrefix=$MANIFESTS_PREFIX"
    "statePrefix=$STATE_PREFIX"
    "eventsTopic=$TOPIC_EVENTS"
    "manifestsTopic=$TOPIC_MANIFESTS"
    "eventsDlqTopic=$TOPIC_EVENTS_DLQ"
    "manifestsDlqTopic=$TOPIC_MANIFESTS_DLQ"
    "originalsDlqTopic=$TOPIC_ORIGINALS_DLQ"
    "deletionsDlqTopic=$TOPIC_DELETIONS_DLQ"
    "uploadFunction=$FN_UPLOAD"
    "processFunction=$FN_PROCESS"
    "notifyFunction=$FN_NOTIFY"
    "cascadeFunction=$FN_CASCADE"
    "imagesFunction=$FN_IMAGES"
    "processSubscription=${PROCESS_SUBSCRIPTION:-PROCESS_TRIGGER_SUBSCRIPTION}"
    "notifySubscription=${NOTIFY_SUBSCRIPTION:-NOTIFY_TRIGGER_SUBSCRIPTION}"
    "cascadeSubscription=${CASCADE_SUBSCRIPTION:-CASCADE_TRIGGER_SUBSCRIPTION}"
  )
}

# Reads the service accounts of infra/gcp/iam.json: sets SA_EMAIL_<key> and SA_ID_<key> and the list
# SA_KEYS. Also writes the raw records to $PP_TMP/service-accounts.
pp_load_service_accounts() {
  pp_vars
  pp_json service-accounts "$IAM_FILE" "${PP_VARS[@]}" >"$PP_TMP/service-accounts"
  SA_KEYS=()
  local key id email
  while IFS=$'\x1f' read -r key id email _ _; do
    SA_KEYS+=("$key")
    printf -v "SA_EMAIL_$key" '%s' "$email"
    printf -v "SA_ID_$key" '%s' "$id"
  done <"$PP_TMP/service-accounts"
}

pp_sa_email() {
  local ref="SA_EMAIL_$1"
  [[ -n ${!ref:-} ]] || pp_die "no service account '$1' in infra/gcp/iam.json"
  printf '%s' "${!ref}"
}

# Sets PP_GET_POLICY / PP_ADD_BINDING / PP_REMOVE_BINDING (arrays) for a resource of iam.json.
# shellcheck disable=SC2034 # globals for the calling script
pp_policy_commands() {
  local type=$1 resource=$2
  case $type in
    project)
      PP_GET_POLICY=(gcloud projects get-iam-policy "$PROJECT" --format=json)
      PP_ADD_BINDING=(gcloud projects add-iam-policy-binding "$PROJECT")
      PP_REMOVE_BINDING=(gcloud projects remove-iam-policy-binding "$PROJECT")
      ;;
    bucket)
      PP_GET_POLICY=(gcloud storage buckets get-iam-policy "gs://$resource" --project="$PROJECT" --format=json)
      PP_ADD_BINDING=(gcloud storage buckets add-iam-policy-binding "gs://$resource" --project="$PROJECT")
      PP_REMOVE_BINDING=(gcloud storage buckets remove-iam-policy-binding "gs://$resource" --project="$PROJECT")
      ;;
    topic)
      PP_GET_POLICY=(gcloud pubsub topics get-iam-policy "$resource" --project="$PROJECT" --format=json)
      PP_ADD_BINDING=(gcloud pubsub topics add-iam-policy-binding "$resource" --project="$PROJECT")
      PP_REMOVE_BINDING=(gcloud pubsub topics remove-iam-policy-binding "$resource" --project="$PROJECT")
      ;;
    subscription)
      PP_GET_POLICY=(gcloud pubsub subscriptions get-iam-policy "$resource" --project="$PROJECT" --format=json)
      PP_ADD_BINDING=(gcloud pubsub subscriptions add-iam-policy-binding "$resource" --project="$PROJECT")
      PP_REMOVE_BINDING=(gcloud pubsub subscriptions remove-iam-policy-binding "$resource" --project="$PROJECT")
      ;;
    serviceAccount)
      PP_GET_POLICY=(gcloud iam service-accounts get-iam-policy "$resource" --project="$PROJECT" --format=json)
      PP_ADD_BINDING=(gcloud iam service-accounts add-iam-policy-binding "$resource" --project="$PROJECT")
      PP_REMOVE_BINDING=(gcloud iam service-accounts remove-iam-policy-binding "$resource" --project="$PROJECT")
      ;;
    runService)
      PP_GET_POLICY=(gcloud run services get-iam-policy "$resource" --region="$REGION" --project="$PROJECT" --format=json)
      PP_ADD_BINDING=(gcloud run services add-iam-policy-binding "$resource" --region="$REGION" --project="$PROJECT")
      PP_REMOVE_BINDING=(gcloud run services remove-iam-policy-binding "$resource" --region="$REGION" --project="$PROJECT")
      ;;
    *) pp_die "unsupported IAM resource type '$type'" ;;
  esac
}
