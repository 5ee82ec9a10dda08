// s3rver ships no type declarations; s3rver-server.ts narrows the constructor to the surface it uses.
declare module 's3rver' {
  const S3rver: new (options: Record<string, unknown>) => unknown;
  export default S3rver;
}
