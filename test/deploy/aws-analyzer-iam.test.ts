/**
 * The Rekognition grant the osls plugin (functions/aws/serverless-prepare.cjs) adds to the process role:
 * exactly the Detect* operations the analysis configuration calls, none when analysis is off or runs
 * elsewhere. The packaged template is checked too, in test/aws/serverless-package.int.test.ts.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { REPO } from './helpers';

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string[];
  Resource: string;
}
type PrepareModule = {
  rekognitionActions(env: Record<string, string | undefined>): string[];
  new (serverless: unknown, options: unknown, utils: unknown): { grantAnalyzer(): void };
};
const Prepare = createRequire(__filename)(path.join(REPO, 'functions', 'aws', 'serverless-prepare.cjs')) as PrepareModule;

describe('rekognitionActions', () => {
  it.each([
    [{}, []],
    [{ PIXELPIPE_ANALYZER: 'none', PIXELPIPE_ANALYSES: 'faces,labels' }, []],
    [{ PIXELPIPE_ANALYZER: 'embedded' }, []],
    [{ PIXELPIPE_ANALYZER: 'rekognition' }, ['rekognition:DetectFaces']],
    [{ PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'labels' }, ['rekognition:DetectLabels']],
    [
      { PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'labels', PIXELPIPE_MODERATION: 'flag' },
      ['rekognition:DetectLabels', 'rekognition:DetectModerationLabels'],
    ],
    [{ PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'moderation', PIXELPIPE_MODERATION: 'off' }, ['rekognition:DetectModerationLabels']],
    [
      { PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'labels', PIXELPIPE_VARIANTS: '[{"name":"t","width":200,"height":200,"position":"faces"}]' },
      ['rekognition:DetectFaces', 'rekognition:DetectLabels'],
    ],
    [
      { PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: ' faces , labels,moderation' },
      ['rekognition:DetectFaces', 'rekognition:DetectLabels', 'rekognition:DetectModerationLabels'],
    ],
  ])('%j → %j', (env, actions) => {
    expect(Prepare.rekognitionActions(env)).toEqual(actions);
  });
});

describe('grantAnalyzer on the service definition', () => {
  const service = (env: Record<string, string>): { statements: Statement[]; plugin: { grantAnalyzer(): void } } => {
    const statements: Statement[] = [{ Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: 'arn:log' }];
    const sls = {
      service: {
        provider: { environment: {} },
        functions: { process: { environment: env } },
        resources: { Resources: { ProcessRole: { Properties: { Policies: [{ PolicyDocument: { Statement: statements } }] } } } },
      },
    };
    return { statements, plugin: new Prepare(sls, {}, { log: console }) };
  };

  it('adds one AnalyzeImages statement, Resource "*" (Rekognition image APIs take no ARN), only with rekognition, and stays idempotent', () => {
    const on = service({ PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'faces,moderation' });
    on.plugin.grantAnalyzer();
    on.plugin.grantAnalyzer();
    expect(on.statements.filter((s) => s.Sid === 'AnalyzeImages')).toEqual([
      { Sid: 'AnalyzeImages', Effect: 'Allow', Action: ['rekognition:DetectFaces', 'rekognition:DetectModerationLabels'], Resource: '*' },
    ]);
    const off = service({ PIXELPIPE_ANALYZER: 'none' });
    off.plugin.grantAnalyzer();
    expect(off.statements.map((s) => s.Sid)).toEqual(['OwnLogs']);
  });
});
