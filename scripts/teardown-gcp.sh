#!/usr/bin/env bash
# Removes what scripts/deploy-gcp.sh created, in reverse order. Buckets (and every object in them) are
# deleted only with --delete-buckets; otherwise they are kept and only the bindings of pixelpipe's
# service accounts are removed from them. Safe to run again: everything is checked before deletion.
#
#   scripts/teardown-gcp.sh --project P --region R [--name pixelpipe] [--delete-buckets] [--dry-run]
#
# Left in place on purpose: enabled APIs, the Cloud Storage service agent's project-level
# roles/pubsub.publisher (other Eventarc storage triggers of the project may rely on it), and the
# build images Cloud Functions keeps in Artifact Registry (gcf-artifacts).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/gcp-common.sh"

usage() {
  cat <<'EOF'
Usage: scripts/teardown-gcp.sh --project P --region R [options]

  --name NAME            prefix used at deploy time (default: pixelpipe)
  --originals-bucket B   default: <project>-<name>-originals
  --variants-bucket B    default: <project>-<name>-variants
  --delete-buckets       also delete both buckets WITH ALL THEIR OBJECTS (originals and variants)
  --dry-run              print every command ("+ ..."), run none
  --verbose              also echo read-only lookups
EOF
}

PROJECT=""
REGION=""
NAME=pixelpipe
ORIGINALS_BUCKET=""
VARIANTS_BUCKET=""
DELETE_BUCKETS=0

pp_option_flag() {
  case $1 in
    --dry-run) PP_DRY_RUN=1 ;;
    --verbose) PP_VERBOSE=1 ;;
    --delete-buckets) DELETE_BUCKETS=1 ;;
    *) return 1 ;;
  esac
}

pp_option_var() {
  case $1 in
    --project) echo PROJECT ;;
    --region) echo REGION ;;
    --name) echo NAME ;;
    --originals-bucket) echo ORIGINALS_BUCKET ;;
    --variants-bucket) echo VARIANTS_BUCKET ;;
  esac
}

pp_parse_options "$@"

[[ -n $PROJECT ]] || pp_die "--project is required"
[[ -n $REGION ]] || pp_die "--region is required"

pp_init
pp_compute_names
pp_load_service_accounts
[[ $PP_DRY_RUN == 1 ]] && pp_note "dry run: nothing is executed; every lookup assumes the resource exists"

# In a dry run, pp_lookup answers "does not exist"; teardown wants to show every delete instead.
exists() {
  if [[ $PP_DRY_RUN == 1 ]]; then
    pp_echo_cmd "$@"
    return 0
  fi
  pp_lookup LOOKUP "$@"
}
LOOKUP=""

# 1. Functions (this also deletes their Eventarc triggers and the triggers' subscriptions/topics).
for fn in "$FN_UPLOAD" "$FN_IMAGES" "$FN_PROCESS" "$FN_NOTIFY" "$FN_CASCADE"; do
  if exists gcloud functions describe "$fn" --region="$REGION" --project="$PROJECT" --format=json; then
    pp_run gcloud functions delete "$fn" --region="$REGION" --project="$PROJECT" --quiet
  else
    pp_note "function $fn: absent"
  fi
done

# 2. The GCS -> Pub/Sub notification(s) of the variants bucket that target the manifests topic.
if exists gcloud storage buckets notifications list "gs://$VARIANTS_BUCKET" --project="$PROJECT" --format=json; then
  if [[ $PP_DRY_RUN == 1 ]]; then
    pp_echo_cmd gcloud storage buckets notifications delete "projects/_/buckets/$VARIANTS_BUCKET/notificationConfigs/ID"
  else
    names=$(printf '%s' "$LOOKUP" | pp_json notification-names "projects/$PROJECT/topics/$TOPIC_MANIFESTS")
    if [[ -z $names ]]; then
      pp_note "notification gs://$VARIANTS_BUCKET -> $TOPIC_MANIFESTS: absent"
    fi
    while IFS= read -r n; do
      if [[ -n $n ]]; then
        pp_run gcloud storage buckets notifications delete "$n" --project="$PROJECT"
      fi
    done <<<"$names"
  fi
fi

# 3. Dead-letter holding subscriptions, then the topics.
for t in "${DLQ_TOPICS[@]}"; do
  if exists gcloud pubsub subscriptions describe "$t-hold" --project="$PROJECT" --format=json; then
    pp_run gcloud pubsub subscriptions delete "$t-hold" --project="$PROJECT" --quiet
  else
    pp_note "subscription $t-hold: absent"
  fi
done
for t in "$TOPIC_EVENTS" "$TOPIC_MANIFESTS" "${DLQ_TOPICS[@]}"; do
  if exists gcloud pubsub topics describe "$t" --project="$PROJECT" --format=json; then
    pp_run gcloud pubsub topics delete "$t" --project="$PROJECT" --quiet
  else
    pp_note "topic $t: absent"
  fi
done

# 4. Bindings of pixelpipe's service accounts that outlive them: project level, and on kept buckets
#    (a deleted account would otherwise linger there as "deleted:serviceAccount:...").
our_members=" "
for key in "${SA_KEYS[@]}"; do
  our_members+="serviceAccount:$(pp_sa_email "$key") "
done
pp_vars
pp_json bindings "$IAM_FILE" all "${PP_VARS[@]}" >"$PP_TMP/bindings-all"
while IFS=$'\x1f' read -r type resource member role _; do
  [[ $our_members == *" $member "* ]] || continue
  case $type in
    project) ;;
    bucket) [[ $DELETE_BUCKETS == 0 ]] || continue ;;
    *) continue ;; # deleted together with their resource
  esac
  pp_policy_commands "$type" "$resource"
  if [[ $PP_DRY_RUN == 1 ]]; then
    pp_echo_cmd "${PP_REMOVE_BINDING[@]}" --member="$member" --role="$role" --all
    continue
  fi
  if pp_lookup LOOKUP "${PP_GET_POLICY[@]}" && printf '%s' "$LOOKUP" | pp_json has-binding-any "$member" "$role"; then
    pp_run_quiet "${PP_REMOVE_BINDING[@]}" --member="$member" --role="$role" --all
  fi
done <"$PP_TMP/bindings-all"

# 5. Service accounts.
for key in "${SA_KEYS[@]}"; do
  email=$(pp_sa_email "$key")
  if exists gcloud iam service-accounts describe "$email" --project="$PROJECT" --format=json; then
    pp_run gcloud iam service-accounts delete "$email" --project="$PROJECT" --quiet
  else
    pp_note "service account $email: absent"
  fi
done

# 6. Custom roles, after every binding that names them. A deleted role can be undeleted for 7 days
#    (deploy-gcp.sh does so) and its ID stays reserved for about 37 days more.
pp_vars
pp_json custom-roles "$IAM_FILE" "${PP_VARS[@]}" >"$PP_TMP/custom-roles"
while IFS=$'\x1f' read -r _ id _; do
  if [[ $PP_DRY_RUN == 1 ]]; then
    pp_echo_cmd gcloud iam roles describe "$id" --project="$PROJECT" --format=json
    pp_echo_cmd gcloud iam roles delete "$id" --project="$PROJECT" --quiet
  elif pp_lookup LOOKUP gcloud iam roles describe "$id" --project="$PROJECT" --format=json &&
    [[ $(printf '%s' "$LOOKUP" | pp_json get deleted) != true ]]; then
    pp_run_quiet gcloud iam roles delete "$id" --project="$PROJECT" --quiet
  else
    pp_note "custom role $id: absent"
  fi
done <"$PP_TMP/custom-roles"

# 7. Buckets, only on request.
for b in "$ORIGINALS_BUCKET" "$VARIANTS_BUCKET"; do
  if [[ $DELETE_BUCKETS == 1 ]]; then
    if exists gcloud storage buckets describe "gs://$b" --project="$PROJECT" --format=json; then
      pp_run gcloud storage rm --recursive --all-versions "gs://$b" --project="$PROJECT"
    else
      pp_note "bucket gs://$b: absent"
    fi
  else
    pp_note "bucket gs://$b: kept (pass --delete-buckets to delete it and everything in it)"
  fi
done

pp_note "pixelpipe '$NAME' removed from $PROJECT ($REGION)"
