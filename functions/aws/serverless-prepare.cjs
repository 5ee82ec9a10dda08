'use strict';
/**
 * Local osls plugin (no registry plugin needed): before osls zips the functions it
 *  1. bundles them with the project's esbuild script (`scripts/build.mjs aws/upload aws/process aws/notify`);
 *  2. installs each bundle's runtime dependencies (sharp + its libvips, heic-decode) into
 *     `dist/aws/<fn>/node_modules` for the Lambda platform of `provider.architecture`, whatever machine
 *     runs the packaging, using npm's `--os/--cpu/--libc` overrides and the versions the tests ran with;
 *  3. checks that the native binary really targets that CPU (ELF machine field), so a zip built on an
 *     x64 laptop for an arm64 function cannot silently ship the wrong sharp;
 *  4. grants the process role exactly the Rekognition actions its analysis configuration calls
 *     (`PIXELPIPE_ANALYZER=rekognition`), and nothing when analysis is off or runs elsewhere.
 * The install is skipped when `node_modules/.pixelpipe-platform` already records the same platform and
 * versions, so repeated packaging works offline.
 *
 * Environment: PIXELPIPE_SKIP_BUILD=1 reuses an existing dist/ (step 1 only).
 */
const { execFileSync } = require('node:child_process');
const { existsSync, readFileSync, writeFileSync, readdirSync, openSync, readSync, closeSync } = require('node:fs');
const { join } = require('node:path');

const FUNCTIONS = ['aws/upload', 'aws/process', 'aws/notify'];
const ELF_MACHINE = { arm64: 0xb7, x64: 0x3e };

class PixelpipePrepare {
  /** @param {any} serverless @param {any} _options @param {{ log: any }} utils */
  constructor(serverless, _options, utils) {
    this.serverless = serverless;
    this.log = (utils && utils.log) || console;
    this.hooks = {
      'before:package:createDeploymentArtifacts': () => this.prepare(),
      'before:deploy:function:packageFunction': () => this.prepare(),
    };
  }

  prepare() {
    this.grantAnalyzer();
    const root = this.serverless.serviceDir || this.serverless.config.servicePath;
    const arch = this.serverless.service.provider.architecture === 'arm64' ? 'arm64' : 'x64';
    const platform = { os: 'linux', cpu: arch, libc: 'glibc' };
    const env = this.serverless.service.provider.environment || {};
    const missing = ['PIXELPIPE_JWKS_URL', 'PIXELPIPE_JWT_ISSUER', 'PIXELPIPE_JWT_AUDIENCE'].filter((v) => !env[v]);
    if (env.PIXELPIPE_AUTH_MODE === 'jwt' && missing.length) {
      // loadConfig refuses these at cold start; say so now rather than after a deploy.
      (this.log.warning || this.log.warn || console.warn).call(
        this.log,
        `pixelpipe: ${missing.join(', ')} empty while authMode=jwt: every function will fail to start. Pass --param="jwksUrl=..." --param="jwtIssuer=..." --param="jwtAudience=...".`,
      );
    }
    if (process.env.PIXELPIPE_SKIP_BUILD !== '1') {
      execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--quiet', ...FUNCTIONS], { cwd: root, stdio: 'inherit' });
    }
    for (const fn of FUNCTIONS) {
      const dir = join(root, 'dist', fn);
      if (!existsSync(join(dir, 'index.js'))) throw new Error(`${dir}/index.js is missing: run npm run build`);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      const deps = Object.keys(pkg.dependencies || {}).sort();
      if (!deps.length) continue;
      // The exact versions the test suite ran against, not whatever the range resolves to today.
      const specs = deps.map((d) => `${d}@${JSON.parse(readFileSync(join(root, 'node_modules', d, 'package.json'), 'utf8')).version}`);
      const stamp = JSON.stringify({ platform, specs });
      const stampFile = join(dir, 'node_modules', '.pixelpipe-platform');
      if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
        this.log.notice
          ? this.log.notice(`pixelpipe: installing ${specs.join(' ')} for linux-${arch} into dist/${fn}`)
          : this.log.log(`installing ${specs.join(' ')}`);
        execFileSync(
          process.platform === 'win32' ? 'npm.cmd' : 'npm',
          [
            'install',
            '--prefix',
            dir,
            `--os=${platform.os}`,
            `--cpu=${platform.cpu}`,
            `--libc=${platform.libc}`,
            '--omit=dev',
            '--no-package-lock',
            '--no-save',
            '--no-audit',
            '--no-fund',
            // sharp's prebuilt binaries arrive as optional packages; no install script needs to run.
            '--ignore-scripts',
            ...specs,
          ],
          { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] },
        );
        writeFileSync(stampFile, stamp);
      }
      if (deps.includes('sharp')) checkSharpBinary(dir, arch);
    }
  }
}

/**
 * The Rekognition actions the process function calls, from its (resolved) environment: the same rule as
 * `requestedAnalyses` in shared/config.ts — the configured analyses (faces when none are listed),
 * moderation when `PIXELPIPE_MODERATION` is not off, and faces when a variant crops on them.
 */
function rekognitionActions(env) {
  if (env.PIXELPIPE_ANALYZER !== 'rekognition') return [];
  const listed = String(env.PIXELPIPE_ANALYSES || '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const analyses = new Set(listed.length ? listed : ['faces']);
  if (env.PIXELPIPE_MODERATION && env.PIXELPIPE_MODERATION !== 'off') analyses.add('moderation');
  try {
    const variants = env.PIXELPIPE_VARIANTS ? JSON.parse(env.PIXELPIPE_VARIANTS) : [];
    if (Array.isArray(variants) && variants.some((v) => v && v.position === 'faces')) analyses.add('faces');
  } catch {
    // loadConfig refuses malformed variants at cold start; the grant stays what the analyses need.
  }
  const ACTION = { faces: 'rekognition:DetectFaces', labels: 'rekognition:DetectLabels', moderation: 'rekognition:DetectModerationLabels' };
  return Object.keys(ACTION)
    .filter((k) => analyses.has(k))
    .map((k) => ACTION[k]);
}

PixelpipePrepare.prototype.grantAnalyzer = function grantAnalyzer() {
  const service = this.serverless.service;
  const fn = (service.functions || {}).process || {};
  const env = { ...(service.provider.environment || {}), ...(fn.environment || {}) };
  const actions = rekognitionActions(env);
  const role = service.resources && service.resources.Resources && service.resources.Resources.ProcessRole;
  if (!role) throw new Error('pixelpipe: ProcessRole is missing from serverless.yml resources');
  const statements = role.Properties.Policies[0].PolicyDocument.Statement;
  const existing = statements.findIndex((st) => st.Sid === 'AnalyzeImages');
  if (existing >= 0) statements.splice(existing, 1);
  if (!actions.length) return;
  // Rekognition's image operations act on bytes in the request and take no resource ARN: IAM only
  // accepts "*" for them. The actions are the bound: exactly the operations this configuration calls.
  statements.push({ Sid: 'AnalyzeImages', Effect: 'Allow', Action: actions, Resource: '*' });
};

/** Fails when the packaged sharp addon is missing or built for another CPU. */
function checkSharpBinary(dir, arch) {
  const pkgDir = join(dir, 'node_modules', '@img', `sharp-linux-${arch}`, 'lib');
  const addon = existsSync(pkgDir) ? readdirSync(pkgDir).find((f) => f.endsWith('.node')) : undefined;
  if (!addon) throw new Error(`sharp for linux-${arch} is not installed in ${dir}/node_modules (expected @img/sharp-linux-${arch})`);
  const header = Buffer.alloc(20);
  const fd = openSync(join(pkgDir, addon), 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (header.toString('latin1', 1, 4) !== 'ELF' || header.readUInt16LE(18) !== ELF_MACHINE[arch]) {
    throw new Error(`${addon} is not a linux-${arch} ELF binary`);
  }
  for (const other of Object.keys(ELF_MACHINE).filter((a) => a !== arch)) {
    if (existsSync(join(dir, 'node_modules', '@img', `sharp-linux-${other}`)))
      throw new Error(`sharp for linux-${other} must not be packaged for an ${arch} function`);
  }
}

module.exports = PixelpipePrepare;
module.exports.rekognitionActions = rekognitionActions;
