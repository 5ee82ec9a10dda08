/**
 * An independent S3 POST policy check, written from AWS's documentation ("Creating a POST Policy",
 * "Calculating a Signature" for browser-based uploads) and not from the SDK: what S3 itself would do
 * with a browser's multipart form. s3rver enforces none of it, so the security tests use this to show
 * that a presigned POST cannot be widened (type, size, key, metadata, expiry) by its holder.
 *
 * Same algorithm as the verification in `test/aws/presigned-post.test.ts`; kept here as a function
 * that answers accept/refuse for a whole form instead of inspecting individual conditions.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

type Condition = Record<string, string> | [string, string, string] | ['content-length-range', number, number];

/** A browser's multipart POST, as S3 receives it. */
export interface PostForm {
  /** The bucket the form is POSTed to (from the URL). */
  bucket: string;
  /** Every form field except the file, as sent. */
  fields: Record<string, string>;
  /** Size of the file part, bytes. */
  fileSize: number;
}

/** Accepted (with the policy's times) or refused (with S3's reason). */
export type PolicyVerdict = { ok: true; expiresAt: Date; signedAt: Date } | { ok: false; reason: string };

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Verifies a browser POST the way S3 does: signature, expiry, every condition, every field covered. */
export function verifyPostPolicy(form: PostForm, options: { secretAccessKey: string; now: Date }): PolicyVerdict {
  const field = (name: string): string | undefined => {
    if (name.toLowerCase() === 'bucket') return form.bucket;
    const hit = Object.keys(form.fields).find((k) => k.toLowerCase() === name.toLowerCase());
    return hit === undefined ? undefined : form.fields[hit];
  };
  const policyB64 = field('policy');
  const signature = field('x-amz-signature');
  const credential = field('x-amz-credential');
  const date = field('x-amz-date');
  if (!policyB64 || !signature || !credential || !date) return { ok: false, reason: 'missing Policy, X-Amz-Signature, X-Amz-Credential or X-Amz-Date' };
  if (field('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') return { ok: false, reason: 'X-Amz-Algorithm must be AWS4-HMAC-SHA256' };

  // Credential: <key id>/<yyyymmdd>/<region>/s3/aws4_request
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[3] !== 's3' || scope[4] !== 'aws4_request' || scope[1] !== date.slice(0, 8))
    return { ok: false, reason: 'malformed credential scope' };
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${options.secretAccessKey}`, scope[1]), scope[2]), 's3'), 'aws4_request');
  const expected = Buffer.from(createHmac('sha256', kSigning).update(policyB64, 'utf8').digest('hex'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'SignatureDoesNotMatch' };

  let policy: { expiration?: unknown; conditions?: unknown };
  try {
    policy = JSON.parse(Buffer.from(policyB64, 'base64').toString('utf8')) as typeof policy;
  } catch {
    return { ok: false, reason: 'policy is not JSON' };
  }
  const expiresAt = new Date(String(policy.expiration));
  if (Number.isNaN(expiresAt.getTime())) return { ok: false, reason: 'policy has no valid expiration' };
  if (options.now.getTime() > expiresAt.getTime()) return { ok: false, reason: 'policy expired' };
  if (!Array.isArray(policy.conditions)) return { ok: false, reason: 'policy has no conditions' };

  const covered = new Set<string>();
  for (const c of policy.conditions as Condition[]) {
    if (Array.isArray(c)) {
      const [op, a, b] = c;
      if (op === 'content-length-range') {
        if (form.fileSize < Number(a) || form.fileSize > Number(b))
          return { ok: false, reason: `file size ${form.fileSize} outside content-length-range ${a},${b}` };
        continue;
      }
      const name = String(a).replace(/^\$/, '').toLowerCase();
      covered.add(name);
      const value = field(name) ?? '';
      if (op === 'eq' && value !== b) return { ok: false, reason: `${name} must equal ${JSON.stringify(b)}` };
      if (op === 'starts-with' && !value.startsWith(String(b))) return { ok: false, reason: `${name} must start with ${JSON.stringify(b)}` };
      if (op !== 'eq' && op !== 'starts-with') return { ok: false, reason: `unknown condition ${op}` };
    } else {
      for (const [k, v] of Object.entries(c)) {
        covered.add(k.toLowerCase());
        if (field(k) !== v) return { ok: false, reason: `${k} must equal ${JSON.stringify(v)}` };
      }
    }
  }
  // S3 refuses a form carrying any field the policy does not mention.
  for (const name of Object.keys(form.fields)) {
    const n = name.toLowerCase();
    if (n === 'policy' || n === 'x-amz-signature' || n === 'file' || n.startsWith('x-ignore-')) continue;
    if (!covered.has(n)) return { ok: false, reason: `field ${name} is not covered by the policy` };
  }
  const signedAt = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  return { ok: true, expiresAt, signedAt };
}

/** Re-encodes the policy with `edit` applied (an attacker editing the document without the secret). */
export function editPolicy(fields: Record<string, string>, edit: (doc: { expiration: string; conditions: Condition[] }) => void): Record<string, string> {
  const doc = JSON.parse(Buffer.from(fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: Condition[] };
  edit(doc);
  return { ...fields, Policy: Buffer.from(JSON.stringify(doc)).toString('base64') };
}
