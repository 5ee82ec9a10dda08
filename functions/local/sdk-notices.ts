/**
 * The AWS SDK prints a NodeVersionSupportWarning on Node < 22 when its first client is built. The
 * deployed functions run Node 22, where it says nothing; on a developer's Node 20 it is about SDK
 * releases after January 2027, not about this code, and it greets every `npm run dev`. So the local
 * tools (dev stack, CLI, load test) use the SDK's documented switch (aws/aws-sdk-js-v3#7983), unless
 * the user set it themselves. The cloud entry points never call this.
 */
export function quietAwsSdkNodeVersionNotice(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
