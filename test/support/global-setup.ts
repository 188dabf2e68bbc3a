import type { TestProject } from 'vitest/node';
import { chooseServices, containerEngineAnswers, startServices } from './services.ts';

/**
 * Vitest global setup: decides once per run where Postgres and Redis come from (see services.ts),
 * starts the containers when that is the choice, and provides the URLs to every test worker.
 * The returned function stops the containers when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const plan = await chooseServices(process.env, containerEngineAnswers);
  const { urls, stop } = await startServices(plan);
  project.provide('testServices', urls);
  if (urls.sources.database === 'container' || urls.sources.redis === 'container') {
    process.stderr.write(`test services: ${JSON.stringify(urls)}\n`);
  }
  return stop;
}
