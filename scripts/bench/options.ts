/** Command-line options of `npm run bench`. */

/** Parts of the run that `--skip` can leave out. */
export const SECTIONS = ['compare', 'quality', 'memory', 'throughput', 'bundles', 'knobs', 'analysis', 'profiles'] as const;
/** One of {@link SECTIONS}. */
export type Section = (typeof SECTIONS)[number];

/** Parsed command line. */
export interface BenchOptions {
  /** Small images and few iterations, for CI (no timing assertions). */
  quick: boolean;
  /** Measured rounds per image (each round runs every pipeline once). */
  iterations: number;
  /** Unmeasured rounds first (page faults, lazy initialisation). */
  warmup: number;
  /** Fresh processes per cold-start figure. */
  coldRuns: number;
  /** `true`: JSON on stdout (tables go to stderr); a string: also write the JSON to that file. */
  json: boolean | string;
  /** Only these image ids (default: all of the run's set). */
  images?: string[];
  skip: Set<Section>;
  /** A previous `--json` file to compare medians against. */
  compare?: string;
  /** Print the Markdown of a saved `--json` report instead of measuring. */
  render?: string;
  /** Relative slowdown that counts as a regression in `--compare` (default 0.15). */
  threshold: number;
  help: boolean;
}

/** `--help` text. */
export const USAGE = `usage: npm run bench -- [options]
  --quick              small images, 2 iterations (CI smoke run; < 60 s; no timing assertions)
  --iterations N       measured rounds per image (default 9; quick 2)
  --warmup N           unmeasured rounds first (default 2; quick 0)
  --cold-runs N        fresh processes per cold-start figure (default 10; quick 3)
  --images a,b         only these image ids (jpeg-12mp, jpeg-24mp, png-alpha, phone-exif6, heic; quick: jpeg-2mp, ...)
  --skip a,b           skip sections: ${SECTIONS.join(', ')}
  --json [file]        machine-readable report: to stdout (tables then go to stderr), or to a file
  --compare old.json   flag medians that got slower than a previous --json report (exit 1 on regression)
  --threshold R        relative slowdown counted as a regression by --compare (default 0.15)
  --render report.json print the tables of a saved --json report (no measuring)`;

function positiveInt(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer (got ${value ?? 'nothing'})`);
  return n;
}

/** Parses `argv` (without node and the script). Throws with a readable message on bad input. */
export function parseArgs(argv: string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const o: BenchOptions = {
    quick,
    iterations: quick ? 2 : 9,
    warmup: quick ? 0 : 2,
    coldRuns: quick ? 3 : 10,
    json: false,
    skip: new Set(),
    threshold: 0.15,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        break;
      case '--iterations':
        o.iterations = positiveInt(flag, value());
        break;
      case '--warmup': {
        const v = value();
        o.warmup = v === '0' ? 0 : positiveInt(flag, v);
        break;
      }
      case '--cold-runs':
        o.coldRuns = positiveInt(flag, value());
        break;
      case '--json':
        if (inline !== undefined) o.json = inline;
        else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) o.json = argv[++i];
        else o.json = true;
        break;
      case '--images':
        o.images = (value() ?? '').split(',').filter(Boolean);
        break;
      case '--skip':
        for (const s of (value() ?? '').split(',').filter(Boolean)) {
          if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--skip: unknown section "${s}" (expected ${SECTIONS.join(', ')})`);
          o.skip.add(s as Section);
        }
        break;
      case '--compare':
        o.compare = value();
        if (!o.compare) throw new Error('--compare needs a file');
        break;
      case '--render':
        o.render = value();
        if (!o.render) throw new Error('--render needs a file');
        break;
      case '--threshold': {
        const t = Number(value());
        if (!(t > 0 && t < 10)) throw new Error('--threshold needs a number such as 0.15');
        o.threshold = t;
        break;
      }
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option "${a}"\n${USAGE}`);
    }
  }
  return o;
}
