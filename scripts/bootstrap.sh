#!/usr/bin/env bash
# The service partner's one-time set-up, in the partner's own tenant and subscription (az login there
# first): state storage, the Key Vault key that encrypts stack secrets, the multi-tenant deployer app, the
# separate read-only preview app, their federated credentials and role assignments. Rerunnable: every step
# looks first and changes only what is missing or differs. Ends with the values the pipelines need and each
# customer's admin-consent links. `bash scripts/bootstrap.sh --help` lists the arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

GRAPH=00000003-0000-0000-c000-000000000000 # Microsoft Graph's app ID, the same in every tenant
GITHUB_ISSUER=https://token.actions.githubusercontent.com
AUDIENCE=api://AzureADTokenExchange

usage() {
  cat <<'EOF'
usage: bash scripts/bootstrap.sh --location REGION --storage-account NAME --key-vault NAME [options]

  --location REGION           Azure region of the resource group, storage account and Key Vault
  --storage-account NAME      storage account for Pulumi state (3-24 lower-case letters and digits)
  --key-vault NAME            Key Vault for the secrets provider key (3-24 letters, digits, dashes)
  --resource-group NAME       default presencesync
  --container NAME            blob container for state (default presencesync)
  --key NAME                  Key Vault key (default presencesync-secrets)
  --deployer-name NAME        the deployer app's display name (default presencesync-deployer)
  --preview-name NAME         the read-only preview app's display name (default presencesync-preview)
  --github OWNER/REPO         federated credentials for GitHub Actions: the deployer for the environments
                              'tenants' and 'rotation' and for main (drift), the preview app for 'preview'
  --ado-issuer URL            Azure DevOps: the issuer a workload identity federation service connection
                              shows (https://vstoken.dev.azure.com/<organization ID>, or
                              https://login.microsoftonline.com/<tenant ID>/v2.0)
  --ado-subject SUBJECT       ... and the subject identifier of the deployer's connection
                              (presencesync-deployer, e.g. sc://<org>/<project>/presencesync-deployer)
  --ado-preview-subject SUBJECT  the subject of the pull-request connection (presencesync-preview)
  --admin-user OBJECT_ID      a user who reads the hand-over (pulumi stack output --show-secrets): blob
  --admin-group OBJECT_ID     reader on the state container and crypto user on the key; repeatable
  --profiles LIST             the profiles the stacks use (ucwa,graph); default: read from the stacks
  --creates-sync-users        with --profiles: a stack will set syncUser.create: true
  --stacks GLOB               the stacks to read profiles and tenants from (default $PRESENCESYNC_STACKS or *)
EOF
}

fail() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'bootstrap: %s\n' "$*" >&2; }

location="" account="" vault="" group=presencesync container=presencesync key=presencesync-secrets
deployer_name=presencesync-deployer preview_name=presencesync-preview
github="" ado_issuer="" ado_subject="" ado_preview_subject=""
admin_users=() admin_groups=() plan_args=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --creates-sync-users) plan_args+=("$1"); shift; continue ;;
  esac
  [ "$#" -ge 2 ] || fail "$1 needs a value; see --help"
  case "$1" in
    --location) location=$2 ;;
    --storage-account) account=$2 ;;
    --key-vault) vault=$2 ;;
    --resource-group) group=$2 ;;
    --container) container=$2 ;;
    --key) key=$2 ;;
    --deployer-name) deployer_name=$2 ;;
    --preview-name) preview_name=$2 ;;
    --github) github=$2 ;;
    --ado-issuer) ado_issuer=$2 ;;
    --ado-subject) ado_subject=$2 ;;
    --ado-preview-subject) ado_preview_subject=$2 ;;
    --admin-user) admin_users+=("$2") ;;
    --admin-group) admin_groups+=("$2") ;;
    --profiles | --stacks) plan_args+=("$1" "$2") ;;
    *) fail "unknown argument '$1'; see --help" ;;
  esac
  shift 2
done

# Every value is checked before anything is touched; none can start with @ (az would read a file).
guid='^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$'
check() { [[ "$2" =~ $3 ]] || fail "$1 '$2' $4"; }
[[ -n "$location" && -n "$account" && -n "$vault" ]] ||
  fail "--location, --storage-account and --key-vault are required; see --help"
check --location "$location" '^[a-z0-9]+$' "is not an Azure region name (e.g. westeurope)"
check --storage-account "$account" '^[a-z0-9]{3,24}$' "must be 3-24 lower-case letters and digits"
check --key-vault "$vault" '^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$' \
  "must be 3-24 letters, digits and dashes, starting with a letter"
check --resource-group "$group" '^[A-Za-z0-9_.()-]{1,90}$' "must be letters, digits and _.()- (at most 90)"
check --container "$container" '^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$' \
  "must be 3-63 lower-case letters, digits and single dashes"
check --key "$key" '^[a-zA-Z0-9-]{1,127}$' "must be letters, digits and dashes"
check --deployer-name "$deployer_name" '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,119}$' "must be letters, digits, spaces and ._-"
check --preview-name "$preview_name" '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,119}$' "must be letters, digits, spaces and ._-"
[ "$deployer_name" != "$preview_name" ] || fail "--deployer-name and --preview-name must differ: two apps"
[ -z "$github" ] || check --github "$github" '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$' "is not OWNER/REPO"
if [ -n "$ado_issuer$ado_subject$ado_preview_subject" ]; then
  [[ -n "$ado_issuer" && -n "$ado_subject" && -n "$ado_preview_subject" ]] ||
    fail "--ado-issuer, --ado-subject and --ado-preview-subject go together (copy them from the service connections)"
  check --ado-issuer "$ado_issuer" '^https://(vstoken\.dev\.azure\.com/[0-9a-fA-F-]{36}|login\.microsoftonline\.com/[0-9a-fA-F-]{36}/v2\.0)$' \
    "is neither https://vstoken.dev.azure.com/<organization ID> nor https://login.microsoftonline.com/<tenant ID>/v2.0"
  for subject in "$ado_subject" "$ado_preview_subject"; do
    check "an Azure DevOps subject" "$subject" '^[A-Za-z0-9/][A-Za-z0-9:/._~+= -]{0,599}$' \
      "holds a character a service connection's subject does not (copy it from the connection)"
  done
  [ "$ado_subject" != "$ado_preview_subject" ] || fail "--ado-subject and --ado-preview-subject must be two connections"
fi
for id in "${admin_users[@]}" "${admin_groups[@]}"; do check "an admin's object ID" "$id" "$guid" "is not a GUID"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x .venv/bin/python ] || { python3 -m venv .venv &&
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock; }
# What the stacks (or --profiles) need, as "kind value..." lines: profile, deployer-role, preview-role, tenant.
plan=$(.venv/bin/python -m presencesync bootstrap-plan "${plan_args[@]}")
plan_values() { awk -v kind="$1" '$1 == kind { $1 = ""; print substr($0, 2) }' <<<"$plan"; }

# az's answer, or nothing when the object does not exist (az exits 3 on a 404); any other failure stops here.
lookup() {
  local out status=0
  out=$(az "$@" 2>"$tmp/error") || status=$?
  if [ "$status" = 0 ]; then
    printf '%s' "$out"
  elif [ "$status" != 3 ]; then
    cat "$tmp/error" >&2
    exit "$status"
  fi
}

# az, retried while Entra ID has not yet replicated an object made moments ago (a new app is not yet
# visible to its service principal, nor a new service principal to Resource Manager); Microsoft documents no
# bound, so the waits grow to a minute and it gives up after about 2 minutes. Any other failure stops here.
replicated() {
  local wait
  for wait in 2 4 8 15 30 60 0; do
    if az "$@" 2>"$tmp/error"; then return 0; fi
    if [ "$wait" = 0 ] ||
      ! grep -qiE "does not reference a valid application object|does not exist|PrincipalNotFound" "$tmp/error"; then
      cat "$tmp/error" >&2
      exit 1
    fi
    say "not replicated yet; retrying in $wait s"
    sleep "$wait"
  done
}

tenant=$(az account show --query tenantId -o tsv)
subscription=$(az account show --query id -o tsv)
authority=$(az cloud show --query endpoints.activeDirectory -o tsv)
say "partner tenant $tenant, subscription $subscription"

# --- state: resource group, storage account (versioning, soft delete), container ---
if [ -z "$(lookup group show --name "$group" --query id -o tsv)" ]; then
  say "creating resource group $group"
  az group create --name "$group" --location "$location" -o none
fi
account_id=$(lookup storage account show --name "$account" --resource-group "$group" --query id -o tsv)
if [ -z "$account_id" ]; then
  say "creating storage account $account"
  az storage account create --name "$account" --resource-group "$group" --location "$location" \
    --sku Standard_ZRS --kind StorageV2 --min-tls-version TLS1_2 --allow-blob-public-access false -o none
  account_id=$(az storage account show --name "$account" --resource-group "$group" --query id -o tsv)
fi
protection=$(az storage account blob-service-properties show --account-name "$account" --resource-group "$group" \
  --query "[isVersioningEnabled, deleteRetentionPolicy.enabled, containerDeleteRetentionPolicy.enabled]" -o tsv)
if [ "$(xargs <<<"${protection,,}")" != "true true true" ]; then
  say "turning on blob versioning and soft delete (30 days) for $account"
  az storage account blob-service-properties update --account-name "$account" --resource-group "$group" \
    --enable-versioning true --enable-delete-retention true --delete-retention-days 30 \
    --enable-container-delete-retention true --container-delete-retention-days 30 -o none
fi
if [ -z "$(lookup storage container-rm show --storage-account "$account" --resource-group "$group" \
  --name "$container" --query id -o tsv)" ]; then
  say "creating container $container"
  az storage container-rm create --storage-account "$account" --resource-group "$group" --name "$container" \
    --public-access off -o none
fi
container_scope="$account_id/blobServices/default/containers/$container"

# --- secrets: Key Vault (RBAC) and its key, created through Resource Manager (no data-plane role needed) ---
vault_line=$(lookup keyvault show --name "$vault" --resource-group "$group" \
  --query "[id, properties.enableRbacAuthorization, properties.vaultUri]" -o tsv)
if [ -z "$vault_line" ]; then
  say "creating Key Vault $vault (RBAC, purge protection)"
  az keyvault create --name "$vault" --resource-group "$group" --location "$location" \
    --enable-rbac-authorization true --enable-purge-protection true -o none
  vault_line=$(az keyvault show --name "$vault" --resource-group "$group" \
    --query "[id, properties.enableRbacAuthorization, properties.vaultUri]" -o tsv)
fi
read -r vault_id vault_rbac vault_uri <<<"$(tr '\n' '\t' <<<"$vault_line")"
[ "${vault_rbac,,}" = true ] ||
  fail "Key Vault $vault uses access policies; the role assignments below need RBAC (az keyvault update --name $vault --enable-rbac-authorization true)"
key_scope="$vault_id/keys/$key"
# Keys - Create If Not Exist: an existing key is returned unchanged, never given a new version.
if [ -z "$(lookup rest --method get --url "$key_scope?api-version=2023-07-01" --query id -o tsv)" ]; then
  say "creating key $key"
  az rest --method put --url "$key_scope?api-version=2023-07-01" \
    --body '{"properties": {"kty": "RSA", "keySize": 3072}}' -o none
fi
vault_host=${vault_uri#https://}
secrets_provider="azurekeyvault://${vault_host%/}/keys/$key"

# --- the two apps: Graph application permissions read by name from this tenant's Graph service principal ---
graph_roles=$(az ad sp show --id "$GRAPH" --query "appRoles[].[value, id]" -o tsv)
# The requiredResourceAccess file for these permission names, and its canonical form for comparing.
write_access() {
  local file=$1 name id entries="" canonical=()
  shift
  for name in "$@"; do
    id=$(awk -v name="$name" '$1 == name { print $2 }' <<<"$graph_roles")
    [ -n "$id" ] || fail "the Microsoft Graph service principal in tenant $tenant offers no application permission $name"
    entries+="${entries:+, }{\"id\": \"$id\", \"type\": \"Role\"}"
    canonical+=("Role:$id")
  done
  printf '[{"resourceAppId": "%s", "resourceAccess": [%s]}]\n' "$GRAPH" "$entries" >"$file"
  printf 'AzureADMultipleOrgs\t%s\t%s' "$GRAPH" "$(printf '%s\n' "${canonical[@]}" | LC_ALL=C sort | xargs)" >"$file.canonical"
}

# Finds or creates the multi-tenant app NAME requesting exactly the permissions in ACCESS; prints its app ID.
ensure_app() {
  local name=$1 access=$2 app_id current
  app_id=$(az ad app list --display-name "$name" --query "[?displayName=='$name'].appId" -o tsv)
  [ "$(wc -w <<<"$app_id")" -le 1 ] || fail "more than one app is named $name ($(xargs <<<"$app_id")); delete the extra ones"
  if [ -z "$app_id" ]; then
    say "creating app $name"
    az ad app create --display-name "$name" --sign-in-audience AzureADMultipleOrgs \
      --required-resource-accesses "@$access" --query appId -o tsv
    return
  fi
  current=$(az ad app show --id "$app_id" --query "[signInAudience, join(',', requiredResourceAccess[].resourceAppId), \
join(' ', sort(requiredResourceAccess[].resourceAccess[].join(':', [type, id])))]" -o tsv | tr '\n' '\t')
  if [ "${current%$'\t'}" != "$(cat "$access.canonical")" ]; then
    say "updating app $name: multi-tenant, exactly the Graph permissions below"
    az ad app update --id "$app_id" --sign-in-audience AzureADMultipleOrgs --required-resource-accesses "@$access" -o none
  fi
  printf '%s\n' "$app_id"
}

ensure_service_principal() {
  local app_id=$1 sp_id
  sp_id=$(az ad sp list --filter "appId eq '$app_id'" --query "[0].id" -o tsv)
  if [ -z "$sp_id" ]; then
    say "creating the service principal of $app_id in the partner tenant"
    sp_id=$(replicated ad sp create --id "$app_id" --query id -o tsv)
  fi
  printf '%s\n' "$sp_id"
}

# A federated credential NAME on the app: created if missing, corrected if its issuer or subject differ.
ensure_federated() {
  local app_id=$1 name=$2 issuer=$3 subject=$4 current
  current=$(az ad app federated-credential list --id "$app_id" \
    --query "[?name=='$name'] | [0].[issuer, subject, join(' ', audiences)]" -o tsv | tr '\n' '\t')
  [ "${current%$'\t'}" != "$issuer"$'\t'"$subject"$'\t'"$AUDIENCE" ] || return 0
  printf '{"name": "%s", "issuer": "%s", "subject": "%s", "audiences": ["%s"]}\n' \
    "$name" "$issuer" "$subject" "$AUDIENCE" >"$tmp/credential.json"
  if [ -z "$current" ]; then
    say "adding federated credential $name ($subject)"
    az ad app federated-credential create --id "$app_id" --parameters "@$tmp/credential.json" -o none
  else
    say "correcting federated credential $name ($subject)"
    az ad app federated-credential update --id "$app_id" --federated-credential-id "$name" \
      --parameters "@$tmp/credential.json" -o none
  fi
}

# Assigns ROLE at SCOPE unless the principal already holds it there.
ensure_role() {
  local object_id=$1 type=$2 role=$3 scope=$4
  if [ -z "$(az role assignment list --scope "$scope" --role "$role" --assignee-object-id "$object_id" \
    --fill-principal-name false --fill-role-definition-name false --query "[0].id" -o tsv)" ]; then
    say "assigning $role to $object_id on ${scope##*/providers/}"
    replicated role assignment create --assignee-object-id "$object_id" --assignee-principal-type "$type" \
      --role "$role" --scope "$scope" -o none
  fi
}

mapfile -t deployer_roles < <(plan_values deployer-role)
mapfile -t preview_roles < <(plan_values preview-role)
write_access "$tmp/deployer.json" "${deployer_roles[@]}"
write_access "$tmp/preview.json" "${preview_roles[@]}"
deployer_app=$(ensure_app "$deployer_name" "$tmp/deployer.json")
preview_app=$(ensure_app "$preview_name" "$tmp/preview.json")
deployer_sp=$(ensure_service_principal "$deployer_app")
preview_sp=$(ensure_service_principal "$preview_app")

if [ -n "$github" ]; then
  # The subjects the workflows' token-minting jobs present: deploy (environment tenants), secret
  # rotation (environment rotation), nightly drift (main, no environment); the preview (environment preview).
  ensure_federated "$deployer_app" github-tenants "$GITHUB_ISSUER" "repo:$github:environment:tenants"
  ensure_federated "$deployer_app" github-rotation "$GITHUB_ISSUER" "repo:$github:environment:rotation"
  ensure_federated "$deployer_app" github-main "$GITHUB_ISSUER" "repo:$github:ref:refs/heads/main"
  ensure_federated "$preview_app" github-preview "$GITHUB_ISSUER" "repo:$github:environment:preview"
fi
if [ -n "$ado_issuer" ]; then
  ensure_federated "$deployer_app" ado-deployer "$ado_issuer" "$ado_subject"
  ensure_federated "$preview_app" ado-preview "$ado_issuer" "$ado_preview_subject"
fi

ensure_role "$deployer_sp" ServicePrincipal "Storage Blob Data Contributor" "$container_scope"
ensure_role "$deployer_sp" ServicePrincipal "Key Vault Crypto User" "$key_scope"
ensure_role "$preview_sp" ServicePrincipal "Storage Blob Data Reader" "$container_scope"
ensure_role "$preview_sp" ServicePrincipal "Key Vault Crypto User" "$key_scope"
for id in "${admin_users[@]}"; do
  ensure_role "$id" User "Storage Blob Data Reader" "$container_scope"
  ensure_role "$id" User "Key Vault Crypto User" "$key_scope"
done
for id in "${admin_groups[@]}"; do
  ensure_role "$id" Group "Storage Blob Data Reader" "$container_scope"
  ensure_role "$id" Group "Key Vault Crypto User" "$key_scope"
done

cat <<EOF
# GitHub: repository variables (Settings > Secrets and variables > Actions > Variables).
# Azure DevOps: the variable group presencesync; service connections presencesync-deployer (deployer app)
# and presencesync-preview (preview app), both workload identity federation to tenant $tenant.
AZURE_CLIENT_ID=$deployer_app
AZURE_PREVIEW_CLIENT_ID=$preview_app
AZURE_TENANT_ID=$tenant
AZURE_SUBSCRIPTION_ID=$subscription
PULUMI_STATE_STORAGE_ACCOUNT=$account
PULUMI_STATE_CONTAINER=$container
# For a shell (export AZURE_STORAGE_ACCOUNT=$account; pulumi login; pulumi stack init --secrets-provider):
PULUMI_BACKEND_URL=azblob://$container
PULUMI_SECRETS_PROVIDER=$secrets_provider
# The deployer requests (Graph application permissions): ${deployer_roles[*]}
# The preview app requests (read-only): ${preview_roles[*]}
# Each customer's admin (Privileged Role Administrator or Global Administrator) opens both links once:
EOF
while read -r stack customer; do
  [ -n "$stack" ] || continue
  printf '# %s (tenant %s)\n' "$stack" "$customer"
  printf '#   deployer: %s/%s/adminconsent?client_id=%s\n' "${authority%/}" "$customer" "$deployer_app"
  printf '#   preview:  %s/%s/adminconsent?client_id=%s\n' "${authority%/}" "$customer" "$preview_app"
done < <(plan_values tenant)
[ -n "$(plan_values tenant)" ] || echo "# (no stacks yet: rerun after adding tenants to print their links)"
