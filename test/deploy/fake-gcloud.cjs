#!/usr/bin/env node
/*
 * A stateful stand-in for `gcloud`, used by test/deploy/*.test.ts (never by the scripts themselves).
 *
 * - Every call is appended to $FAKE_GCLOUD_LOG as one JSON line:
 *   {"argv":[...],"command":"storage buckets create","files":{"--cors-file":"<content>"},"exit":0}
 *   (the content of --cors-file / --lifecycle-file / --env-vars-file is captured at call time,
 *   because the scripts delete their temporary files when they exit).
 * - The emulated project lives in $FAKE_GCLOUD_STATE (JSON; created on first use). It is written
 *   only when a call changes something, with sorted keys, so "nothing changed" means "byte-identical".
 * - It rejects what real gcloud / GCP would reject and what matters to the scripts: unknown commands
 *   and flags, creating what exists, binding on missing resources or to missing service accounts,
 *   unconditional bindings on policies with conditions without --condition=None, a notification
 *   whose topic the storage agent cannot publish to, a storage trigger without the agent's project-
 *   level publisher grant or without an eventReceiver trigger service account, a binding of a custom role
 *   that does not exist (or is deleted), creating a custom role whose ID a deleted one still holds.
 *
 * Not found errors print "NOT_FOUND" on stderr and exit 1 like gcloud does.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const LOG = process.env.FAKE_GCLOUD_LOG;
const STATE = process.env.FAKE_GCLOUD_STATE;
const PROJECT_NUMBER = process.env.FAKE_GCLOUD_PROJECT_NUMBER || '123456789012';

const GLOBAL_FLAGS = ['project', 'format', 'quiet', 'verbosity', 'region'];

/** command path -> allowed flags (besides GLOBAL_FLAGS). Taken from `gcloud <cmd> --help` (SDK 528). */
const COMMANDS = {
  'services list': ['enabled', 'available', 'filter', 'limit'],
  'services enable': ['async'],
  'projects describe': [],
  'projects get-iam-policy': [],
  'projects add-iam-policy-binding': ['member', 'role', 'condition'],
  'projects remove-iam-policy-binding': ['member', 'role', 'condition', 'all'],
  'storage service-agent': [],
  'iam roles describe': [],
  'iam roles create': ['title', 'description', 'permissions', 'stage'],
  'iam roles update': ['title', 'description', 'permissions', 'add-permissions', 'remove-permissions', 'stage'],
  'iam roles delete': [],
  'iam roles undelete': [],
  'iam service-accounts describe': [],
  'iam service-accounts create': ['display-name', 'description'],
  'iam service-accounts delete': [],
  'iam service-accounts get-iam-policy': [],
  'iam service-accounts add-iam-policy-binding': ['member', 'role', 'condition'],
  'iam service-accounts remove-iam-policy-binding': ['member', 'role', 'condition', 'all'],
  'storage buckets describe': [],
  'storage buckets create': [
    'location',
    'uniform-bucket-level-access',
    'public-access-prevention',
    'lifecycle-file',
    'default-storage-class',
    'soft-delete-duration',
  ],
  'storage buckets update': ['uniform-bucket-level-access', 'public-access-prevention', 'cors-file', 'clear-cors', 'lifecycle-file', 'clear-lifecycle'],
  'storage buckets get-iam-policy': [],
  'storage buckets add-iam-policy-binding': ['member', 'role', 'condition'],
  'storage buckets remove-iam-policy-binding': ['member', 'role', 'condition', 'all'],
  'storage buckets notifications list': [],
  'storage buckets notifications create': ['topic', 'event-types', 'object-prefix', 'payload-format', 'skip-topic-setup', 'custom-attributes'],
  'storage buckets notifications delete': [],
  'storage rm': ['recursive', 'all-versions', 'continue-on-error'],
  'pubsub topics describe': [],
  'pubsub topics create': ['labels'],
  'pubsub topics delete': [],
  'pubsub topics get-iam-policy': [],
  'pubsub topics add-iam-policy-binding': ['member', 'role'],
  'pubsub topics remove-iam-policy-binding': ['member', 'role'],
  'pubsub subscriptions describe': [],
  'pubsub subscriptions create': ['topic', 'message-retention-duration', 'expiration-period', 'ack-deadline', 'dead-letter-topic', 'max-delivery-attempts'],
  'pubsub subscriptions update': ['dead-letter-topic', 'max-delivery-attempts', 'clear-dead-letter-policy'],
  'pubsub subscriptions delete': [],
  'pubsub subscriptions get-iam-policy': [],
  'pubsub subscriptions add-iam-policy-binding': ['member', 'role'],
  'pubsub subscriptions remove-iam-policy-binding': ['member', 'role'],
  'functions deploy': [
    'gen2',
    'runtime',
    'source',
    'entry-point',
    'service-account',
    'env-vars-file',
    'memory',
    'cpu',
    'timeout',
    'concurrency',
    'max-instances',
    'min-instances',
    'retry',
    'trigger-http',
    'trigger-topic',
    'trigger-event-filters',
    'trigger-location',
    'trigger-service-account',
    'allow-unauthenticated',
    'no-allow-unauthenticated',
    'ingress-settings',
    'build-service-account',
  ],
  'functions describe': ['v2'],
  'functions delete': [],
  'run services describe': [],
  'run services update': ['invoker-iam-check', 'no-invoker-iam-check'],
  'run services get-iam-policy': [],
  'run services add-iam-policy-binding': ['member', 'role'],
  'run services remove-iam-policy-binding': ['member', 'role'],
  'eventarc triggers describe': ['location'],
};

class GcloudError extends Error {
  constructor(message, code = 1) {
    super(message);
    this.code = code;
  }
}
const notFound = (what) => new GcloudError(`NOT_FOUND: ${what} was not found`);
const conflict = (what) => new GcloudError(`ALREADY_EXISTS: ${what} already exists (409)`);
const bad = (what) => new GcloudError(`INVALID_ARGUMENT: ${what}`, 2);

function parseArgs(argv) {
  const words = [];
  const flags = {};
  for (const a of argv) {
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const k = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const v = eq < 0 ? true : a.slice(eq + 1);
      (flags[k] = flags[k] || []).push(v);
    } else {
      words.push(a);
    }
  }
  let command = null;
  for (let n = Math.min(4, words.length); n > 0; n--) {
    const candidate = words.slice(0, n).join(' ');
    if (COMMANDS[candidate]) {
      command = candidate;
      break;
    }
  }
  if (!command) throw bad(`unknown command: ${words.join(' ')}`);
  const positionals = words.slice(command.split(' ').length);
  for (const k of Object.keys(flags)) {
    if (!GLOBAL_FLAGS.includes(k) && !COMMANDS[command].includes(k)) throw bad(`unrecognized arguments: --${k}`);
    if (flags[k].some((v) => v === true) && flags[k].some((v) => v !== true)) throw bad(`--${k} mixed forms`);
  }
  return { command, positionals, flags };
}

const one = (flags, k) => (flags[k] ? flags[k][flags[k].length - 1] : undefined);

function emptyState() {
  return {
    project: null,
    enabledServices: ['storage.googleapis.com'],
    serviceAccounts: {},
    customRoles: {},
    buckets: {},
    topics: {},
    subscriptions: {},
    projectIam: { bindings: [] },
    functions: {},
    runServices: {},
    triggers: {},
    counter: 0,
  };
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
}

function readState() {
  if (!STATE || !fs.existsSync(STATE)) return emptyState();
  return JSON.parse(fs.readFileSync(STATE, 'utf8'));
}

function writeState(state) {
  if (!STATE) return;
  const text = JSON.stringify(sortKeys(state), null, 2) + '\n';
  if (fs.existsSync(STATE) && fs.readFileSync(STATE, 'utf8') === text) return;
  fs.writeFileSync(STATE, text);
}

function format(value, fmt) {
  if (fmt === undefined || fmt === 'json') return JSON.stringify(value, null, 2) + '\n';
  if (fmt === 'none') return '';
  const m = /^value\((.+)\)$/.exec(fmt);
  if (!m) throw bad(`fake gcloud does not support --format=${fmt}`);
  const keys = m[1].split('.');
  const pick = (obj) => keys.reduce((o, k) => (o == null ? undefined : o[k]), obj);
  const items = Array.isArray(value) ? value : [value];
  return items.map((i) => `${pick(i) ?? ''}\n`).join('');
}

function parseCondition(raw) {
  if (raw === undefined) return undefined;
  if (raw === 'None') return null;
  const out = {};
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw bad(`bad --condition ${raw}`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  if (!out.expression || !out.title) throw bad('condition needs expression and title');
  return out;
}

function sameCondition(a, b) {
  if (!a && !b) return true;
  if (!a || !b) return false;
  return a.title === b.title && a.expression === b.expression;
}

function main(argv) {
  const state = readState();
  const { command, positionals, flags } = parseArgs(argv);
  const project = one(flags, 'project') || (command.startsWith('projects ') ? positionals[0] : undefined);
  const out = [];
  const print = (v) => out.push(format(v, one(flags, 'format')));

  const needProject = () => {
    if (!project && command !== 'projects describe') throw bad('--project is required in tests');
    if (state.project && project && project !== state.project) throw bad(`project ${project} differs from ${state.project}`);
    state.project = state.project || project;
  };
  const agentStorage = () => `service-${PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com`;
  const bucketOf = (url) => {
    const m = /^gs:\/\/([^/]+)\/?$/.exec(url || '');
    if (!m) throw bad(`not a bucket url: ${url}`);
    return m[1];
  };
  const topicName = (t) => String(t).replace(/^projects\/[^/]+\/topics\//, '');
  const subName = (s) => String(s).replace(/^projects\/[^/]+\/subscriptions\//, '');

  const checkMember = (member) => {
    const m = /^serviceAccount:(.+)$/.exec(member);
    if (!m) return;
    const email = m[1];
    if (email.endsWith('.iam.gserviceaccount.com') && email.includes(`@${state.project}.iam.`) && !state.serviceAccounts[email]) {
      throw bad(`Service account ${email} does not exist.`);
    }
  };

  const policyTarget = (kind, name) => {
    switch (kind) {
      case 'projects':
        if (name !== state.project) throw notFound(`project ${name}`);
        return state.projectIam;
      case 'storage buckets': {
        const b = state.buckets[bucketOf(name)];
        if (!b) throw notFound(`bucket ${name}`);
        return b.iam;
      }
      case 'pubsub topics': {
        const t = state.topics[topicName(name)];
        if (!t) throw notFound(`topic ${name}`);
        return t.iam;
      }
      case 'pubsub subscriptions': {
        const s = state.subscriptions[subName(name)];
        if (!s) throw notFound(`subscription ${name}`);
        return s.iam;
      }
      case 'iam service-accounts': {
        const sa = state.serviceAccounts[name];
        if (!sa) throw notFound(`service account ${name}`);
        return sa.iam;
      }
      case 'run services': {
        const r = state.runServices[name];
        if (!r) throw notFound(`service ${name}`);
        return r.iam;
      }
      default:
        throw bad(kind);
    }
  };

  const iamCommand =
    /^(projects|storage buckets|pubsub topics|pubsub subscriptions|iam service-accounts|run services) (get-iam-policy|add-iam-policy-binding|remove-iam-policy-binding)$/.exec(
      command,
    );
  if (iamCommand) {
    needProject();
    const [, kind, verb] = iamCommand;
    const policy = policyTarget(kind, positionals[0]);
    if (verb === 'get-iam-policy') {
      print({ bindings: policy.bindings, etag: 'BwYfake=', version: 3 });
      return { out, state, changed: false };
    }
    const member = one(flags, 'member');
    const role = one(flags, 'role');
    if (!member || !role) throw bad('--member and --role are required');
    const condition = parseCondition(one(flags, 'condition'));
    const hasConditions = policy.bindings.some((b) => b.condition);
    if (verb === 'add-iam-policy-binding') {
      checkMember(member);
      const custom = /^projects\/([^/]+)\/roles\/(.+)$/.exec(role);
      if (custom) {
        const r = custom[1] === state.project ? (state.customRoles || {})[custom[2]] : undefined;
        if (!r || r.deleted) throw bad(`Role (${role}) does not exist in the resource's hierarchy.`);
      } else if (!/^roles\/[a-zA-Z]+\.[a-zA-Z]+$/.test(role)) throw bad(`Role ${role} is not a role name`);
      if (condition !== undefined && !['projects', 'storage buckets', 'iam service-accounts'].includes(kind)) {
        throw bad('unrecognized arguments: --condition');
      }
      if (hasConditions && condition === undefined && ['projects', 'storage buckets'].includes(kind)) {
        throw bad(
          'Adding a binding without specifying a condition to a policy containing conditions is prohibited in non-interactive mode. Run the command again with `--condition=None`',
        );
      }
      let binding = policy.bindings.find((b) => b.role === role && sameCondition(b.condition, condition));
      if (!binding) {
        binding = { role, members: [] };
        if (condition) binding.condition = { title: condition.title, expression: condition.expression, description: condition.description || '' };
        policy.bindings.push(binding);
      }
      if (!binding.members.includes(member)) binding.members.push(member);
      binding.members.sort();
    } else {
      const all = one(flags, 'all') === true;
      let removed = false;
      for (const b of policy.bindings) {
        if (b.role !== role) continue;
        if (!all && !sameCondition(b.condition, condition || null)) continue;
        const before = b.members.length;
        b.members = b.members.filter((m) => m !== member);
        removed = removed || b.members.length !== before;
      }
      if (!removed) throw bad('Policy binding with the specified principal, role, and condition not found!');
      policy.bindings = policy.bindings.filter((b) => b.members.length);
    }
    print({ bindings: policy.bindings, etag: 'BwYfake=', version: 3 });
    return { out, state, changed: true };
  }

  switch (command) {
    case 'services list': {
      needProject();
      print(state.enabledServices.map((name) => ({ config: { name } })));
      return { out, state, changed: false };
    }
    case 'services enable': {
      needProject();
      if (!positionals.length) throw bad('no services');
      for (const s of positionals) if (!state.enabledServices.includes(s)) state.enabledServices.push(s);
      state.enabledServices.sort();
      return { out, state, changed: true };
    }
    case 'projects describe': {
      state.project = state.project || positionals[0];
      if (positionals[0] !== state.project) throw notFound(`project ${positionals[0]}`);
      print({ projectId: state.project, projectNumber: PROJECT_NUMBER });
      return { out, state, changed: false };
    }
    case 'storage service-agent': {
      needProject();
      out.push(`${agentStorage()}\n`);
      return { out, state, changed: false };
    }
    case 'iam roles describe': {
      needProject();
      const id = positionals[0];
      const r = (state.customRoles || {})[id];
      // FAKE_GCLOUD_HIDE_DELETED_ROLES: a role deleted more than 7 days ago is no longer described, but its ID stays taken.
      if (!r || (r.deleted && process.env.FAKE_GCLOUD_HIDE_DELETED_ROLES === '1')) throw notFound(`role projects/${project}/roles/${id}`);
      const desc = {
        name: `projects/${project}/roles/${id}`,
        title: r.title,
        description: r.description,
        includedPermissions: r.includedPermissions,
        stage: r.stage,
        etag: 'BwYrole=',
      };
      if (r.deleted) desc.deleted = true;
      print(desc);
      return { out, state, changed: false };
    }
    case 'iam roles create': {
      needProject();
      const id = positionals[0];
      if (!/^[a-zA-Z0-9_.]{3,64}$/.test(id || '')) throw bad(`role ID ${id} is invalid`);
      state.customRoles = state.customRoles || {};
      if (state.customRoles[id]) {
        throw state.customRoles[id].deleted
          ? bad(`You can't create a role with role_id (${id}) where there is an existing role with that role_id in a deleted state.`)
          : conflict(`role ${id}`);
      }
      const perms = String(one(flags, 'permissions') || '');
      if (!perms) throw bad('--permissions is required');
      state.customRoles[id] = {
        title: String(one(flags, 'title') || id),
        description: String(one(flags, 'description') || ''),
        includedPermissions: perms.split(',').sort(),
        stage: String(one(flags, 'stage') || 'ALPHA'),
      };
      return { out, state, changed: true };
    }
    case 'iam roles update': {
      needProject();
      const r = (state.customRoles || {})[positionals[0]];
      if (!r) throw notFound(`role ${positionals[0]}`);
      if (r.deleted) throw bad(`role ${positionals[0]} is deleted`);
      if (one(flags, 'title') !== undefined) r.title = String(one(flags, 'title'));
      if (one(flags, 'description') !== undefined) r.description = String(one(flags, 'description'));
      if (one(flags, 'stage') !== undefined) r.stage = String(one(flags, 'stage'));
      if (one(flags, 'permissions') !== undefined) r.includedPermissions = String(one(flags, 'permissions')).split(',').sort();
      return { out, state, changed: true };
    }
    case 'iam roles delete':
    case 'iam roles undelete': {
      needProject();
      const r = (state.customRoles || {})[positionals[0]];
      if (!r) throw notFound(`role ${positionals[0]}`);
      const deleting = command === 'iam roles delete';
      if (Boolean(r.deleted) === deleting) throw bad(`role ${positionals[0]} is ${deleting ? 'already deleted' : 'not deleted'}`);
      if (deleting) r.deleted = true;
      else delete r.deleted;
      return { out, state, changed: true };
    }
    case 'iam service-accounts describe': {
      needProject();
      const sa = state.serviceAccounts[positionals[0]];
      if (!sa) throw notFound(`service account ${positionals[0]}`);
      print({ email: positionals[0], displayName: sa.displayName });
      return { out, state, changed: false };
    }
    case 'iam service-accounts create': {
      needProject();
      const id = positionals[0];
      if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(id)) throw bad(`bad service account id ${id}`);
      const email = `${id}@${project}.iam.gserviceaccount.com`;
      if (state.serviceAccounts[email]) throw conflict(`service account ${email}`);
      state.serviceAccounts[email] = { displayName: one(flags, 'display-name') || '', description: one(flags, 'description') || '', iam: { bindings: [] } };
      return { out, state, changed: true };
    }
    case 'iam service-accounts delete': {
      needProject();
      const email = positionals[0];
      if (!state.serviceAccounts[email]) throw notFound(`service account ${email}`);
      delete state.serviceAccounts[email];
      // Like GCP: bindings of a deleted account remain, as "deleted:serviceAccount:...".
      const policies = [
        state.projectIam,
        ...Object.values(state.buckets).map((b) => b.iam),
        ...Object.values(state.topics).map((t) => t.iam),
        ...Object.values(state.subscriptions).map((s) => s.iam),
        ...Object.values(state.serviceAccounts).map((s) => s.iam),
        ...Object.values(state.runServices).map((r) => r.iam),
      ];
      for (const p of policies)
        for (const b of p.bindings) b.members = b.members.map((m) => (m === `serviceAccount:${email}` ? `deleted:serviceAccount:${email}?uid=1` : m));
      return { out, state, changed: true };
    }
    case 'storage buckets describe': {
      needProject();
      const name = bucketOf(positionals[0]);
      const b = state.buckets[name];
      if (!b) throw notFound(`gs://${name}`);
      const desc = {
        storage_url: `gs://${name}/`,
        name,
        location: b.location.toUpperCase(),
        uniform_bucket_level_access: b.ubla,
        public_access_prevention: b.pap ? 'enforced' : 'inherited',
      };
      if (b.cors && b.cors.length) desc.cors_config = b.cors;
      if (b.lifecycle && b.lifecycle.rule && b.lifecycle.rule.length) desc.lifecycle_config = b.lifecycle;
      print(desc);
      return { out, state, changed: false };
    }
    case 'storage buckets create': {
      needProject();
      const name = bucketOf(positionals[0]);
      if (state.buckets[name]) throw new GcloudError(`HTTPError 409: The requested bucket name is not available.`);
      const lifecycleFile = one(flags, 'lifecycle-file');
      state.buckets[name] = {
        location: String(one(flags, 'location') || 'US'),
        ubla: one(flags, 'uniform-bucket-level-access') === true,
        pap: one(flags, 'public-access-prevention') === true,
        cors: [],
        lifecycle: lifecycleFile ? JSON.parse(fs.readFileSync(lifecycleFile, 'utf8')) : null,
        iam: { bindings: [] },
        notifications: [],
        objects: 0,
      };
      return { out, state, changed: true };
    }
    case 'storage buckets update': {
      needProject();
      const b = state.buckets[bucketOf(positionals[0])];
      if (!b) throw notFound(positionals[0]);
      if (one(flags, 'uniform-bucket-level-access') === true) b.ubla = true;
      if (one(flags, 'public-access-prevention') === true) b.pap = true;
      if (one(flags, 'cors-file')) b.cors = JSON.parse(fs.readFileSync(one(flags, 'cors-file'), 'utf8'));
      if (one(flags, 'clear-cors') === true) b.cors = [];
      if (one(flags, 'lifecycle-file')) b.lifecycle = JSON.parse(fs.readFileSync(one(flags, 'lifecycle-file'), 'utf8'));
      if (one(flags, 'clear-lifecycle') === true) b.lifecycle = null;
      return { out, state, changed: true };
    }
    case 'storage buckets notifications list': {
      needProject();
      const name = bucketOf(positionals[0]);
      const b = state.buckets[name];
      if (!b) throw notFound(`gs://${name}`);
      print(b.notifications.map((n) => ({ 'Bucket URL': `gs://${name}/`, 'Notification Configuration': { ...n, kind: 'storage#notification' } })));
      return { out, state, changed: false };
    }
    case 'storage buckets notifications create': {
      needProject();
      const name = bucketOf(positionals[0]);
      const b = state.buckets[name];
      if (!b) throw notFound(`gs://${name}`);
      const topic = topicName(one(flags, 'topic') || name);
      const t = state.topics[topic];
      if (!t) throw notFound(`topic ${topic}`);
      const member = `serviceAccount:${agentStorage()}`;
      if (!t.iam.bindings.some((x) => x.role === 'roles/pubsub.publisher' && x.members.includes(member))) {
        throw new GcloudError('PERMISSION_DENIED: the Cloud Storage service agent cannot publish to the topic');
      }
      state.counter += 1;
      b.notifications.push({
        id: String(state.counter),
        topic: `//pubsub.googleapis.com/projects/${project}/topics/${topic}`,
        event_types: one(flags, 'event-types') ? String(one(flags, 'event-types')).split(',') : undefined,
        object_name_prefix: one(flags, 'object-prefix'),
        payload_format: (one(flags, 'payload-format') || 'json') === 'json' ? 'JSON_API_V1' : 'NONE',
      });
      return { out, state, changed: true };
    }
    case 'storage buckets notifications delete': {
      let changed = false;
      for (const p of positionals) {
        const m = /^projects\/_\/buckets\/([^/]+)\/notificationConfigs\/(.+)$/.exec(p);
        if (!m) throw bad(`not a notification config name: ${p}`);
        const b = state.buckets[m[1]];
        if (!b || !b.notifications.some((n) => n.id === m[2])) throw notFound(p);
        b.notifications = b.notifications.filter((n) => n.id !== m[2]);
        changed = true;
      }
      return { out, state, changed };
    }
    case 'storage rm': {
      needProject();
      if (one(flags, 'recursive') !== true) throw bad('rm of a bucket needs --recursive');
      for (const p of positionals) {
        const name = bucketOf(p);
        if (!state.buckets[name]) throw notFound(p);
        delete state.buckets[name];
      }
      return { out, state, changed: true };
    }
    case 'pubsub topics describe': {
      needProject();
      const t = state.topics[topicName(positionals[0])];
      if (!t) throw notFound(`topic ${positionals[0]}`);
      print({ name: `projects/${project}/topics/${topicName(positionals[0])}` });
      return { out, state, changed: false };
    }
    case 'pubsub topics create': {
      needProject();
      const name = topicName(positionals[0]);
      if (state.topics[name]) throw conflict(`topic ${name}`);
      state.topics[name] = { iam: { bindings: [] } };
      return { out, state, changed: true };
    }
    case 'pubsub topics delete': {
      needProject();
      for (const p of positionals) {
        if (!state.topics[topicName(p)]) throw notFound(`topic ${p}`);
        delete state.topics[topicName(p)];
      }
      return { out, state, changed: true };
    }
    case 'pubsub subscriptions describe': {
      needProject();
      const name = subName(positionals[0]);
      const s = state.subscriptions[name];
      if (!s) throw notFound(`subscription ${name}`);
      const desc = { name: `projects/${project}/subscriptions/${name}`, topic: `projects/${project}/topics/${s.topic}` };
      if (s.deadLetterPolicy) desc.deadLetterPolicy = s.deadLetterPolicy;
      print(desc);
      return { out, state, changed: false };
    }
    case 'pubsub subscriptions create': {
      needProject();
      const name = subName(positionals[0]);
      if (state.subscriptions[name]) throw conflict(`subscription ${name}`);
      const topic = topicName(one(flags, 'topic'));
      if (!state.topics[topic]) throw notFound(`topic ${topic}`);
      state.subscriptions[name] = {
        topic,
        iam: { bindings: [] },
        retention: one(flags, 'message-retention-duration') || null,
        expiration: one(flags, 'expiration-period') || null,
      };
      return { out, state, changed: true };
    }
    case 'pubsub subscriptions update': {
      needProject();
      const name = subName(positionals[0]);
      const s = state.subscriptions[name];
      if (!s) throw notFound(`subscription ${name}`);
      const dlq = one(flags, 'dead-letter-topic');
      if (dlq) {
        if (!state.topics[topicName(dlq)]) throw notFound(`topic ${dlq}`);
        const max = Number(one(flags, 'max-delivery-attempts') || 5);
        if (!(max >= 5 && max <= 100)) throw bad('max-delivery-attempts must be 5..100');
        s.deadLetterPolicy = { deadLetterTopic: `projects/${project}/topics/${topicName(dlq)}`, maxDeliveryAttempts: max };
      }
      if (one(flags, 'clear-dead-letter-policy') === true) delete s.deadLetterPolicy;
      return { out, state, changed: true };
    }
    case 'pubsub subscriptions delete': {
      needProject();
      for (const p of positionals) {
        if (!state.subscriptions[subName(p)]) throw notFound(`subscription ${p}`);
        delete state.subscriptions[subName(p)];
      }
      return { out, state, changed: true };
    }
    case 'functions deploy':
      return deployFunction();
    case 'functions describe': {
      needProject();
      const f = state.functions[positionals[0]];
      if (!f || f.region !== one(flags, 'region')) throw notFound(`function ${positionals[0]}`);
      print(f);
      return { out, state, changed: false };
    }
    case 'functions delete': {
      needProject();
      const name = positionals[0];
      const f = state.functions[name];
      if (!f || f.region !== one(flags, 'region')) throw notFound(`function ${name}`);
      if (f.eventTrigger) {
        const tname = f.eventTrigger.trigger.split('/').pop();
        const t = state.triggers[tname];
        if (t) {
          delete state.subscriptions[subName(t.transport.pubsub.subscription)];
          if (t.managedTopic) delete state.topics[t.managedTopic];
          delete state.triggers[tname];
        }
      }
      delete state.runServices[name];
      delete state.functions[name];
      return { out, state, changed: true };
    }
    case 'run services describe': {
      needProject();
      const r = state.runServices[positionals[0]];
      if (!r || r.region !== one(flags, 'region')) throw notFound(`service ${positionals[0]}`);
      print({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: positionals[0], annotations: r.annotations } });
      return { out, state, changed: false };
    }
    case 'run services update': {
      needProject();
      const r = state.runServices[positionals[0]];
      if (!r || r.region !== one(flags, 'region')) throw notFound(`service ${positionals[0]}`);
      if (one(flags, 'no-invoker-iam-check') === true) r.annotations['run.googleapis.com/invoker-iam-disabled'] = 'true';
      if (one(flags, 'invoker-iam-check') === true) delete r.annotations['run.googleapis.com/invoker-iam-disabled'];
      return { out, state, changed: true };
    }
    case 'eventarc triggers describe': {
      needProject();
      const t = state.triggers[positionals[0]];
      if (!t || t.location !== one(flags, 'location')) throw notFound(`trigger ${positionals[0]}`);
      print(t);
      return { out, state, changed: false };
    }
    default:
      throw bad(`unhandled ${command}`);
  }

  function deployFunction() {
    needProject();
    const name = positionals[0];
    const region = one(flags, 'region');
    if (!region) throw bad('--region is required');
    if (one(flags, 'gen2') !== true) throw bad('tests expect --gen2');
    const source = one(flags, 'source');
    if (!source || !fs.existsSync(path.join(source, 'index.js'))) throw bad(`--source ${source} has no index.js`);
    const sa = one(flags, 'service-account');
    if (sa && !state.serviceAccounts[sa]) throw bad(`service account ${sa} does not exist`);
    const envFile = one(flags, 'env-vars-file');
    const env = {};
    if (envFile) {
      for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const m = /^([A-Za-z_][A-Za-z0-9_]*): (".*")$/.exec(line);
        if (!m) throw bad(`env file line not understood: ${line}`);
        env[m[1]] = JSON.parse(m[2]);
      }
    }
    const existing = state.functions[name];
    const triggerSa = one(flags, 'trigger-service-account');
    const filters = flags['trigger-event-filters'] || [];
    const topic = one(flags, 'trigger-topic');
    let eventTrigger = existing ? existing.eventTrigger : undefined;
    if (filters.length || topic) {
      if (!triggerSa || !state.serviceAccounts[triggerSa]) throw bad('trigger service account missing');
      const receiver = state.projectIam.bindings.some((b) => b.role === 'roles/eventarc.eventReceiver' && b.members.includes(`serviceAccount:${triggerSa}`));
      if (!receiver) throw new GcloudError('PERMISSION_DENIED: trigger service account lacks roles/eventarc.eventReceiver');
      const location = filters.length ? one(flags, 'trigger-location') || region : region;
      if (!eventTrigger) {
        state.counter += 1;
        const tname = `${name}-${state.counter}`;
        let subscriptionTopic = topic ? topicName(topic) : null;
        let managedTopic = null;
        if (filters.length) {
          const f = Object.fromEntries(filters.map((x) => x.split('=')));
          if (!state.buckets[f.bucket]) throw notFound(`bucket ${f.bucket}`);
          const agent = `serviceAccount:${agentStorage()}`;
          if (!state.projectIam.bindings.some((b) => b.role === 'roles/pubsub.publisher' && b.members.includes(agent))) {
            throw new GcloudError('PERMISSION_DENIED: the Cloud Storage service agent needs roles/pubsub.publisher on the project');
          }
          managedTopic = `eventarc-${location}-${tname}-${state.counter}`;
          state.topics[managedTopic] = { iam: { bindings: [] } };
          subscriptionTopic = managedTopic;
        } else if (!state.topics[subscriptionTopic]) throw notFound(`topic ${subscriptionTopic}`);
        const sub = `eventarc-${location}-${tname}-sub-${state.counter}`;
        state.subscriptions[sub] = { topic: subscriptionTopic, iam: { bindings: [] }, retention: null, expiration: null };
        state.triggers[tname] = {
          name: `projects/${project}/locations/${location}/triggers/${tname}`,
          location,
          managedTopic,
          transport: { pubsub: { subscription: `projects/${project}/subscriptions/${sub}` } },
        };
        eventTrigger = { trigger: `projects/${project}/locations/${location}/triggers/${tname}` };
      }
    }
    state.functions[name] = {
      name: `projects/${project}/locations/${region}/functions/${name}`,
      region,
      environment: 'GEN_2',
      buildConfig: { runtime: one(flags, 'runtime'), entryPoint: one(flags, 'entry-point'), source: source },
      serviceConfig: {
        uri: `https://${name}-fake-${region}.a.run.app`,
        service: `projects/${project}/locations/${region}/services/${name}`,
        serviceAccountEmail: sa,
        environmentVariables: env,
        availableMemory: one(flags, 'memory'),
        availableCpu: one(flags, 'cpu'),
        timeout: one(flags, 'timeout'),
        maxInstanceCount: one(flags, 'max-instances'),
        maxInstanceRequestConcurrency: one(flags, 'concurrency'),
        ingressSettings: one(flags, 'ingress-settings'),
      },
      eventTrigger: eventTrigger
        ? { ...eventTrigger, retryPolicy: one(flags, 'retry') === true ? 'RETRY_POLICY_RETRY' : 'RETRY_POLICY_DO_NOT_RETRY' }
        : undefined,
    };
    if (!state.runServices[name]) state.runServices[name] = { region, annotations: {}, iam: { bindings: [] } };
    if (one(flags, 'allow-unauthenticated') === true) {
      const policy = state.runServices[name].iam;
      policy.bindings.push({ role: 'roles/run.invoker', members: ['allUsers'] });
    }
    return { out, state: JSON.parse(JSON.stringify(state)), changed: true };
  }
}

function run() {
  const argv = process.argv.slice(2);
  const record = { argv, files: {} };
  for (const a of argv) {
    const m = /^--(cors-file|lifecycle-file|env-vars-file)=(.+)$/.exec(a);
    if (m) record.files[`--${m[1]}`] = fs.existsSync(m[2]) ? fs.readFileSync(m[2], 'utf8') : null;
  }
  let code = 0;
  try {
    const { out, state, changed } = main(argv);
    if (changed) writeState(state);
    else if (STATE && !fs.existsSync(STATE)) writeState(state);
    process.stdout.write(out.join(''));
  } catch (err) {
    code = err instanceof GcloudError ? err.code : 3;
    process.stderr.write(`ERROR: (gcloud) ${err.message}\n`);
  }
  record.exit = code;
  try {
    record.command = parseArgs(argv).command;
  } catch {
    record.command = null;
  }
  if (LOG) fs.appendFileSync(LOG, JSON.stringify(record) + '\n');
  process.exitCode = code;
}

run();
