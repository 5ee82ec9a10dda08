// Preloaded (`node -r`) into a child that runs a GCP function: Node's fetch() to https://<host>.googleapis.com/<path>
// goes to the local Google fake at GOOGLEAPIS_FAKE_URL as /<host>.googleapis.com/<path> (the convention of
// test/support/google-fake.ts), so credentials that exchange a grant at oauth2.googleapis.com work offline
// and nothing reaches Google. Every other URL is left alone.
const fake = process.env.GOOGLEAPIS_FAKE_URL;
if (!fake) throw new Error('googleapis-redirect.cjs needs GOOGLEAPIS_FAKE_URL');
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const u = new URL(input instanceof Request ? input.url : String(input));
  if (u.protocol === 'https:' && u.hostname.endsWith('.googleapis.com')) {
    const target = `${fake}/${u.hostname}${u.pathname}${u.search}`;
    return input instanceof Request ? realFetch(new Request(target, input), init) : realFetch(target, init);
  }
  return realFetch(input, init);
};
