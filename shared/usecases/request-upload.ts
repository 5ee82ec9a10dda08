/**
 * Use case: an authenticated caller asks where to upload one image.
 */
import { z } from 'zod';
import type { PixelpipeConfig } from '../config';
import { ClientError } from '../errors';
import { callOptions, type Invocation } from '../invocation';
import { originalKey, ownerSegment } from '../keys';
import { defaultProfile, findProfile, PROFILE_METADATA, profileNames } from '../profiles';
import type { Clock, IdGenerator, Principal, UploadTarget, UrlSigner } from '../ports';

export interface UploadDeps {
  signer: UrlSigner;
  ids: IdGenerator;
  clock: Clock;
  config: PixelpipeConfig;
}

/** The JSON body the upload endpoint accepts. Unknown fields are rejected so typos do not pass silently. */
export const uploadRequestSchema = z
  .object({
    contentType: z.string().min(1).max(100),
    size: z.number().int().min(1),
    filename: z.string().max(1024).optional(),
    /** A configured profile name; absent: `PIXELPIPE_DEFAULT_PROFILE`. */
    profile: z.string().max(100).optional(),
  })
  .strict();

/** The 201 body: where to send the bytes, until when, and where to ask for the result. */
export interface UploadResponse {
  id: string;
  key: string;
  upload: UploadTarget;
  expiresAt: string;
  statusUrl?: string;
}

/**
 * Chooses the key (`originals/<owner>/<id>`, never derived from the filename), checks type and size
 * against the limits of the requested profile, and signs a target pinned to that key, type, size range
 * and profile. Throws `ClientError` (400/413/415; 400 `unknown_profile`) for requests that can never succeed. The signing runs within
 * `inv`'s deadline; the trace id of `inv` is stored with the object.
 */
export async function requestUpload(deps: UploadDeps, principal: Principal, body: unknown, inv: Invocation): Promise<UploadResponse> {
  const { config } = deps;
  const parsed = uploadRequestSchema.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ClientError(400, 'invalid_request', `${first.path.join('.') || 'body'}: ${first.message}`);
  }
  const req = parsed.data;
  const profile = req.profile === undefined ? defaultProfile(config) : findProfile(config, req.profile);
  if (!profile) throw new ClientError(400, 'unknown_profile', `profile must be one of: ${profileNames(config).join(', ')}`);
  const { limits } = profile;
  const contentType = req.contentType.split(';')[0].trim().toLowerCase();
  if (!limits.allowedTypes.includes(contentType)) {
    throw new ClientError(415, 'content_type_not_allowed', `content type must be one of: ${limits.allowedTypes.join(', ')}`);
  }
  if (req.size > limits.maxInputBytes) {
    throw new ClientError(413, 'too_large', `size must be at most ${limits.maxInputBytes} bytes`);
  }
  const id = deps.ids.newId();
  const key = originalKey(config.layout, ownerSegment(principal.subject), id);
  const expiresIn = config.upload.expirySeconds;
  // Signed with the target (a V4 signed header / an exact POST policy condition): the holder cannot switch profiles.
  const metadata: Record<string, string> = { 'pixelpipe-trace': inv.traceId, [PROFILE_METADATA]: profile.name };
  const filename = req.filename === undefined ? '' : sanitizeFilename(req.filename);
  if (filename) metadata['pixelpipe-filename'] = encodeURIComponent(filename);
  const upload = await deps.signer.signUpload(
    {
      bucket: config.buckets.originals,
      key,
      contentType,
      minBytes: 1,
      // The declared size is the bound: the storage service refuses a body of any other size class.
      maxBytes: req.size,
      expiresInSeconds: expiresIn,
      metadata,
    },
    callOptions(inv),
  );
  return {
    id,
    key,
    upload,
    expiresAt: new Date(deps.clock.now().getTime() + expiresIn * 1000).toISOString(),
    ...(config.upload.statusUrlBase ? { statusUrl: `${config.upload.statusUrlBase.replace(/\/$/, '')}/${id}` } : {}),
  };
}

/** The longest display name kept, in code points. */
export const MAX_FILENAME_CODE_POINTS = 200;

/**
 * The display name only: last path segment, NFKC, no control or bidi-override characters, ≤ 200 code
 * points, well-formed Unicode (a lone surrogate becomes U+FFFD; the cut never splits a pair), so the
 * URI encoding of the result cannot fail.
 * It is stored as metadata for people to read and never becomes part of a key. NFKC comes before the
 * split so compatibility forms of separators and dots (`／`, `．．`) cannot survive into a name that a
 * consumer normalising it later (e.g. for a download file name) would see as a path.
 */
export function sanitizeFilename(name: string): string {
  const last = name.toWellFormed().normalize('NFKC').split(/[\\/]/).pop() ?? '';
  const clean = last
    // \p{Cc} is U+0000–U+001F and U+007F–U+009F.
    .replace(/[\p{Cc}\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/gu, '')
    .trim()
    .replace(/^\.+$/, '');
  // By code points (the string iterator), not UTF-16 units: `slice` could end inside a surrogate pair.
  return Array.from(clean).slice(0, MAX_FILENAME_CODE_POINTS).join('');
}
