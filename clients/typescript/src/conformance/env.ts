// Where the conformance kit finds its server and people, from the environment (the Go harness
// internal/tsclient sets these; another client's authors set them for their own server).

export interface ConformanceEnv {
  /** FIELDSYNC_URL: the server's base URL. */
  url: string;
  /** FIELDSYNC_MANAGER: a manager's login, of the reps' branch. */
  manager: string;
  /** FIELDSYNC_REP: a rep's login (an agent). */
  rep: string;
  /** FIELDSYNC_REP2: another rep of the same branch (reassignments go to them). */
  rep2: string;
  /** FIELDSYNC_PASSWORD: the three users' password. */
  password: string;
}

/** The environment, or undefined when FIELDSYNC_URL is not set (the scenarios are then skipped). */
export function envFromProcess(e: NodeJS.ProcessEnv = process.env): ConformanceEnv | undefined {
  if (!e.FIELDSYNC_URL) return undefined;
  const need = (k: string) => {
    const v = e[k];
    if (!v) throw new Error(`conformance kit: ${k} is not set (see clients/typescript/README.md)`);
    return v;
  };
  return { url: e.FIELDSYNC_URL, manager: need('FIELDSYNC_MANAGER'), rep: need('FIELDSYNC_REP'), rep2: need('FIELDSYNC_REP2'), password: need('FIELDSYNC_PASSWORD') };
}
