import { readAppText } from '../apprunner/sandbox-files.js';

/** Dokku's app.json, the parts the platform reads. */
export interface AppJson {
  healthchecks?: { web?: Array<Record<string, unknown>> };
  scripts?: { dokku?: { predeploy?: unknown; postdeploy?: unknown } };
}

/** The release's app.json, or null without one; read without following links (see sandbox-files.ts). */
export function readAppJson(dir: string): AppJson | null {
  const text = readAppText(dir, 'app.json');
  if (text === null) return null;
  try {
    return JSON.parse(text) as AppJson;
  } catch (err) {
    throw new Error(`app.json is not valid JSON: ${(err as Error).message}`);
  }
}
