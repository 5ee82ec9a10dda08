#!/usr/bin/env node
/*
 * JSON helper for scripts/deploy-gcp.sh and scripts/teardown-gcp.sh.
 *
 * Bash cannot parse JSON safely; node is always present where the scripts run, so every piece of
 * JSON handling (reading infra/gcp/*.json, rendering templates, reading `gcloud --format=json`
 * output from stdin) lives here. Plain CommonJS, no dependencies.
 *
 * Output records use the ASCII unit separator (\x1f) between fields so that bash can split them with
 * `IFS=$'\x1f' read -r ...` without collapsing empty fields.
 *
 * Usage: node gcp-json.cjs <command> [args...]   (vars are given as key=value arguments)
 *   render FILE key=value...                  FILE with {key} placeholders filled, "$comment" dropped
 *   cors TEMPLATE BUCKET_KEY ORIGINS_CSV      CORS list for one bucket ("[]" when ORIGINS_CSV is empty)
 *   validate-origins ORIGINS_CSV              exit 1 with a message for '*', wildcards or non-origins
 *   service-accounts IAM_FILE key=value...    key US id US email US displayName US description
 *   custom-roles IAM_FILE key=value...        key US id US title US description US permissions (CSV) US stage
 *   role-diff TITLE DESCRIPTION PERMS STAGE   stdin: `gcloud iam roles describe --format=json`; prints what
 *                                             differs: deleted title description permissions stage
 *   bindings IAM_FILE PHASE key=value...      PHASE pre|post|all: type US resource US member US role US
 *                                             conditionTitle US conditionExpression US conditionDescription
 *   has-binding MEMBER ROLE [COND_TITLE]      stdin: IAM policy JSON; exit 0 when the binding exists
 *   has-binding-any MEMBER ROLE               same, with or without any condition
 *   get KEY [KEY...]                          stdin: JSON; prints the value at that key path ('' if none)
 *   bucket-diff CORS_FILE LIFECYCLE_FILE      stdin: `gcloud storage buckets describe --format=json`;
 *                                             prints what must be updated: ubla pap cors lifecycle
 *   notification-find TOPIC PREFIX EVENT      stdin: `gcloud storage buckets notifications list
 *                                             --format=json`; prints ids of equal notifications
 *   notification-names TOPIC                  same stdin; prints names of all notifications to TOPIC
 *   dead-letter-ok TOPIC_PATH MAX_ATTEMPTS    stdin: subscription JSON; exit 0 when already configured
 *   env-yaml KEY=VALUE...                     YAML map for --env-vars-file (values always quoted)
 */
'use strict';

const fs = require('node:fs');

const US = '\x1f';

function fail(message) {
  process.stderr.write(`gcp-json: ${message}\n`);
  process.exit(2);
}

function readJsonFile(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read JSON ${file}: ${err.message}`);
  }
}

function readStdinJson() {
  const text = fs.readFileSync(0, 'utf8').trim();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(`stdin is not JSON: ${err.message}`);
  }
}

function parseVars(args) {
  const vars = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) fail(`expected key=value, got ${JSON.stringify(arg)}`);
    vars[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  return vars;
}

function fill(value, vars) {
  if (typeof value === 'string') {
    return value.replace(/\{([A-Za-z][A-Za-z0-9]*)\}/g, (whole, key) => {
      if (!(key in vars)) fail(`no value for placeholder {${key}}`);
      return vars[key];
    });
  }
  if (Array.isArray(value)) return value.map((v) => fill(v, vars));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '$comment') continue;
      out[k] = fill(v, vars);
    }
    return out;
  }
  return value;
}

/** Recursively sorts object keys so that two JSON values can be compared as strings. */
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value).sort()) {
      if (value[k] === null || value[k] === undefined) continue;
      out[k] = canonical(value[k]);
    }
    return out;
  }
  return value;
}

function sameJson(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function splitCsv(csv) {
  return String(csv || '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function originProblem(origin) {
  if (origin.includes('*')) return `wildcard origin ${JSON.stringify(origin)} is not allowed`;
  let url;
  try {
    url = new URL(origin);
  } catch {
    return `${JSON.stringify(origin)} is not a URL origin`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `${JSON.stringify(origin)} must be http(s)`;
  if (url.origin !== origin) return `${JSON.stringify(origin)} is not an origin (expected ${url.origin}: scheme://host[:port], no path or trailing slash)`;
  return null;
}

function renderCors(template, bucketKey, originsCsv) {
  const origins = splitCsv(originsCsv);
  for (const o of origins) {
    const problem = originProblem(o);
    if (problem) fail(problem);
  }
  if (!origins.length) return [];
  const rules = template[bucketKey];
  if (!Array.isArray(rules)) fail(`CORS template has no list "${bucketKey}"`);
  return rules.map((rule) => {
    const out = {};
    for (const [k, v] of Object.entries(rule)) {
      if (k === '$comment') continue;
      out[k] = k === 'origin' ? v.flatMap((o) => (o === '__CORS_ORIGINS__' ? origins : [o])) : v;
    }
    if ((out.origin || []).some((o) => o.includes('*'))) fail('CORS template must not contain wildcard origins');
    return out;
  });
}

function saEmail(id, project) {
  return `${id}@${project}.iam.gserviceaccount.com`;
}

function resolveServiceAccounts(iam, vars) {
  const out = {};
  for (const [key, sa] of Object.entries(iam.serviceAccounts || {})) {
    const id = fill(sa.id, vars);
    if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(id)) fail(`service account id ${JSON.stringify(id)} is invalid (6-30 chars, [a-z0-9-])`);
    out[key] = { key, id, email: saEmail(id, vars.project), displayName: sa.displayName || id, description: sa.description || '' };
  }
  return out;
}

function resolveMember(member, sas, vars) {
  if (member.startsWith('sa:')) {
    const sa = sas[member.slice(3)];
    if (!sa) fail(`unknown service account reference ${member}`);
    return `serviceAccount:${sa.email}`;
  }
  if (member === 'agent:storage') {
    if (!vars.storageAgent) fail('storageAgent not given');
    return `serviceAccount:${vars.storageAgent}`;
  }
  if (member === 'agent:pubsub') {
    if (!vars.projectNumber) fail('projectNumber not given');
    return `serviceAccount:service-${vars.projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;
  }
  if (/^(allUsers|allAuthenticatedUsers)$/.test(member)) fail(`${member} is never allowed`);
  fail(`unsupported member ${member}`);
}

/** IAM custom role IDs: letters, digits, '_' and '.', 3-64 characters (a deploy name's '-' becomes '_'). */
const ROLE_ID = /^[a-zA-Z0-9_.]{3,64}$/;
/** One concrete permission, service.resource.verb: never a wildcard. */
const PERMISSION = /^[a-z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*$/;

function resolveCustomRoles(iam, vars) {
  const roleVars = { ...vars, rolePrefix: String(vars.name || '').replace(/-/g, '_') };
  const out = {};
  for (const [key, role] of Object.entries(iam.customRoles || {})) {
    const id = fill(role.id, roleVars);
    if (!ROLE_ID.test(id)) fail(`custom role id ${JSON.stringify(id)} is invalid (3-64 chars of [a-zA-Z0-9_.])`);
    const permissions = [...(role.permissions || [])].sort();
    if (!permissions.length) fail(`custom role ${key} has no permissions`);
    for (const p of permissions) if (!PERMISSION.test(p)) fail(`custom role ${key}: ${JSON.stringify(p)} is not a single permission`);
    const title = fill(role.title || id, roleVars);
    const description = fill(role.description || '', roleVars);
    for (const v of [title, description]) if (/\n/.test(v) || v.includes(US)) fail(`custom role ${key}: title/description must be one line`);
    out[key] = { key, id, name: `projects/${vars.project}/roles/${id}`, title, description, permissions, stage: role.stage || 'GA' };
  }
  return out;
}

/** What an existing custom role (`gcloud iam roles describe --format=json`) lacks compared with the wanted one. */
function roleDiff(desc, title, description, permissionsCsv, stage) {
  const d = desc || {};
  const out = [];
  if (d.deleted === true) out.push('deleted');
  if ((d.title || '') !== title) out.push('title');
  if ((d.description || '') !== description) out.push('description');
  const have = [...(d.includedPermissions || [])].sort().join(',');
  if (have !== splitCsv(permissionsCsv).sort().join(',')) out.push('permissions');
  if ((d.stage || 'ALPHA') !== stage) out.push('stage');
  return out;
}

const POST_DEPLOY_TYPES = new Set(['runService', 'subscription']);
const RESOURCE_TYPES = new Set(['project', 'bucket', 'topic', 'subscription', 'serviceAccount', 'runService']);

function resolveRole(role, customRoles) {
  if (!role.startsWith('custom:')) return role;
  const r = customRoles[role.slice('custom:'.length)];
  if (!r) fail(`unknown custom role reference ${role}`);
  return r.name;
}

function resolveBindings(iam, vars, phase) {
  const sas = resolveServiceAccounts(iam, vars);
  const customRoles = resolveCustomRoles(iam, vars);
  const rows = [];
  for (const b of iam.bindings || []) {
    const type = b.resource && b.resource.type;
    if (!RESOURCE_TYPES.has(type)) fail(`unsupported resource type ${type}`);
    const isPost = POST_DEPLOY_TYPES.has(type);
    if (phase === 'pre' && isPost) continue;
    if (phase === 'post' && !isPost) continue;
    let resource;
    if (type === 'project') resource = vars.project;
    else if (type === 'serviceAccount') {
      const ref = b.resource.name || '';
      if (!ref.startsWith('sa:') || !sas[ref.slice(3)]) fail(`serviceAccount resource must name sa:<key>, got ${ref}`);
      resource = sas[ref.slice(3)].email;
    } else resource = fill(b.resource.name, vars);
    const member = resolveMember(b.member, sas, vars);
    let title = '';
    let expression = '';
    let description = '';
    if (b.condition) {
      if (type !== 'bucket') fail('conditions are only supported on bucket bindings');
      title = fill(b.condition.title, vars);
      description = fill(b.condition.description || '', vars);
      const prefix = fill(b.condition.objectPrefix, vars);
      expression = `resource.name.startsWith("projects/_/buckets/${resource}/objects/${prefix}")`;
      for (const v of [title, description, expression]) {
        if (/[,\n]/.test(v) || v.includes(US)) fail(`condition values must not contain commas or newlines: ${v}`);
      }
    }
    rows.push([type, resource, member, resolveRole(b.role, customRoles), title, expression, description]);
  }
  return rows;
}

function hasBinding(policy, member, role, title) {
  const bindings = (policy && policy.bindings) || [];
  return bindings.some((b) => {
    if (b.role !== role || !(b.members || []).includes(member)) return false;
    const t = b.condition ? b.condition.title || '' : '';
    return t === (title || '');
  });
}

function getPath(value, keys) {
  let cur = value;
  for (const k of keys) {
    if (cur === null || cur === undefined) return '';
    cur = cur[k];
  }
  if (cur === null || cur === undefined) return '';
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

function bucketDiff(desc, corsFile, lifecycleFile) {
  const wantCors = corsFile && corsFile !== '-' ? JSON.parse(fs.readFileSync(corsFile, 'utf8')) : [];
  const wantLifecycle = lifecycleFile && lifecycleFile !== '-' ? JSON.parse(fs.readFileSync(lifecycleFile, 'utf8')) : null;
  const d = desc || {};
  const out = [];
  if (d.uniform_bucket_level_access !== true) out.push('ubla');
  if (String(d.public_access_prevention || '').toLowerCase() !== 'enforced') out.push('pap');
  const haveCors = Array.isArray(d.cors_config) ? d.cors_config : [];
  if (!sameJson(haveCors, wantCors)) out.push('cors');
  const haveLifecycle = d.lifecycle_config && d.lifecycle_config.rule ? d.lifecycle_config : null;
  const want = wantLifecycle && wantLifecycle.rule && wantLifecycle.rule.length ? wantLifecycle : null;
  if (!sameJson(haveLifecycle, want)) out.push('lifecycle');
  return out;
}

/** `gcloud storage buckets notifications list --format=json` yields [{"Bucket URL", "Notification Configuration"}]. */
function notificationConfigs(list) {
  const arr = Array.isArray(list) ? list : list ? [list] : [];
  return arr.map((item) => {
    const c = item['Notification Configuration'] || item.notification_configuration || item;
    const url = item['Bucket URL'] || '';
    return {
      bucket: url.replace(/^gs:\/\//, '').replace(/\/$/, ''),
      id: String(c.id ?? ''),
      topic: String(c.topic || ''),
      prefix: c.object_name_prefix ?? c.objectNamePrefix ?? '',
      events: c.event_types ?? c.eventTypes ?? [],
      payload: c.payload_format ?? c.payloadFormat ?? '',
    };
  });
}

function topicMatches(full, topicPath) {
  // full: //pubsub.googleapis.com/projects/P/topics/T ; topicPath: projects/P/topics/T
  return full === topicPath || full.endsWith(`/${topicPath}`);
}

function envYaml(pairs) {
  const lines = [];
  const seen = new Set();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) fail(`expected KEY=VALUE, got ${JSON.stringify(pair)}`);
    const key = pair.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) fail(`bad environment variable name ${key}`);
    if (seen.has(key)) fail(`duplicate environment variable ${key}`);
    seen.add(key);
    // A JSON string is a valid YAML double-quoted scalar, so no value can break the file.
    lines.push(`${key}: ${JSON.stringify(pair.slice(eq + 1))}`);
  }
  return lines.join('\n') + '\n';
}

function main(argv) {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'render': {
      const [file, ...rest] = args;
      process.stdout.write(JSON.stringify(fill(readJsonFile(file), parseVars(rest)), null, 2) + '\n');
      return 0;
    }
    case 'cors': {
      const [file, key, origins] = args;
      process.stdout.write(JSON.stringify(renderCors(readJsonFile(file), key, origins), null, 2) + '\n');
      return 0;
    }
    case 'validate-origins': {
      for (const o of splitCsv(args[0])) {
        const problem = originProblem(o);
        if (problem) {
          process.stderr.write(`${problem}\n`);
          return 1;
        }
      }
      return 0;
    }
    case 'service-accounts': {
      const [file, ...rest] = args;
      const sas = resolveServiceAccounts(readJsonFile(file), parseVars(rest));
      for (const sa of Object.values(sas)) {
        process.stdout.write([sa.key, sa.id, sa.email, sa.displayName, sa.description].join(US) + '\n');
      }
      return 0;
    }
    case 'custom-roles': {
      const [file, ...rest] = args;
      for (const r of Object.values(resolveCustomRoles(readJsonFile(file), parseVars(rest)))) {
        process.stdout.write([r.key, r.id, r.title, r.description, r.permissions.join(','), r.stage].join(US) + '\n');
      }
      return 0;
    }
    case 'role-diff': {
      const [title, description, permissions, stage] = args;
      process.stdout.write(roleDiff(readStdinJson(), title, description, permissions, stage).join(' '));
      return 0;
    }
    case 'bindings': {
      const [file, phase, ...rest] = args;
      if (!['pre', 'post', 'all'].includes(phase)) fail(`phase must be pre, post or all, got ${phase}`);
      for (const row of resolveBindings(readJsonFile(file), parseVars(rest), phase)) {
        process.stdout.write(row.join(US) + '\n');
      }
      return 0;
    }
    case 'has-binding': {
      const [member, role, title] = args;
      return hasBinding(readStdinJson(), member, role, title) ? 0 : 1;
    }
    case 'has-binding-any': {
      const [member, role] = args;
      const policy = readStdinJson();
      return ((policy && policy.bindings) || []).some((b) => b.role === role && (b.members || []).includes(member)) ? 0 : 1;
    }
    case 'get': {
      process.stdout.write(getPath(readStdinJson(), args));
      return 0;
    }
    case 'bucket-diff': {
      const [cors, lifecycle] = args;
      process.stdout.write(bucketDiff(readStdinJson(), cors, lifecycle).join(' '));
      return 0;
    }
    case 'notification-find': {
      const [topicPath, prefix, event] = args;
      const hits = notificationConfigs(readStdinJson()).filter(
        (n) =>
          topicMatches(n.topic, topicPath) &&
          n.prefix === prefix &&
          Array.isArray(n.events) &&
          n.events.length === 1 &&
          n.events[0] === event &&
          (n.payload === '' || n.payload === 'JSON_API_V1'),
      );
      process.stdout.write(hits.map((n) => n.id).join('\n'));
      return 0;
    }
    case 'notification-names': {
      const [topicPath] = args;
      const hits = notificationConfigs(readStdinJson()).filter((n) => topicMatches(n.topic, topicPath));
      process.stdout.write(hits.map((n) => `projects/_/buckets/${n.bucket}/notificationConfigs/${n.id}`).join('\n'));
      return 0;
    }
    case 'dead-letter-ok': {
      const [topicPath, max] = args;
      const sub = readStdinJson() || {};
      const p = sub.deadLetterPolicy || {};
      return p.deadLetterTopic === topicPath && String(p.maxDeliveryAttempts) === String(max) ? 0 : 1;
    }
    case 'env-yaml': {
      process.stdout.write(envYaml(args));
      return 0;
    }
    default:
      fail(`unknown command ${JSON.stringify(cmd)}`);
  }
  return 2;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

module.exports = {
  renderCors,
  resolveBindings,
  resolveServiceAccounts,
  resolveCustomRoles,
  roleDiff,
  hasBinding,
  bucketDiff,
  notificationConfigs,
  envYaml,
  originProblem,
  canonical,
};
