/**
 * Parity between Cerbos and OPA/Verdict on the scenario inputs. The Cerbos policy expresses some of
 * the controls (bench/README.md, "Cerbos"): on an input, Cerbos must deny exactly when OPA's result
 * has a violation of one of those controls. An input OPA denies only on controls the Cerbos policy
 * does not express is allowed by Cerbos and counted apart, never as an agreement.
 */

/** The controls bench/cerbos/policies express (DEFAULT-DENY: Cerbos denies what no rule allows). */
export const CERBOS_CONTROLS: ReadonlySet<string> = new Set([
  'DEFAULT-DENY',
  'TOOL-001',
  'TOOL-002',
  'TOOL-003',
  'TOOL-004',
  'TOOL-005',
  'TOOL-006',
  'TOOL-007',
  'REL-001',
  'REL-002',
  'REL-003',
  'REL-004',
  'REL-005',
  'REL-006',
  'REL-007',
]);

/** The part of OPA's/Verdict's result contract that parity reads. */
export interface PolicyResult {
  allow: boolean;
  violations: { control: string; waived_by?: string }[];
}

/** The controls that denied: the violations no waiver lifted. */
export function decidingControls(result: PolicyResult): string[] {
  return [...new Set(result.violations.filter((v) => !v.waived_by).map((v) => v.control))].sort();
}

/** Cerbos's expected answer: allow unless a control it expresses denied. */
export function expectedCerbosAllow(result: PolicyResult): boolean {
  return !decidingControls(result).some((c) => CERBOS_CONTROLS.has(c));
}

/** The tally of one scenario's inputs. */
export interface ParityTally {
  inputs: number;
  /** Cerbos and OPA agree (allow or deny). */
  agreeAllow: number;
  agreeDeny: number;
  /** OPA denies only on controls Cerbos does not express (Cerbos allows, as expected), by control. */
  notExpressible: number;
  notExpressibleByControl: Record<string, number>;
  /** Inputs where Cerbos's answer is not the expected one (must be none). */
  disagreements: { input: number; cerbosAllow: boolean; opaControls: string[] }[];
}

/** Compares Cerbos's answers with OPA's results, input by input (same order). */
export function tallyParity(opa: PolicyResult[], cerbosAllow: boolean[]): ParityTally {
  if (opa.length !== cerbosAllow.length)
    throw new Error(`parity: ${opa.length} OPA results vs ${cerbosAllow.length} Cerbos answers`);
  const tally: ParityTally = {
    inputs: opa.length,
    agreeAllow: 0,
    agreeDeny: 0,
    notExpressible: 0,
    notExpressibleByControl: {},
    disagreements: [],
  };
  opa.forEach((result, input) => {
    const allow = cerbosAllow[input]!;
    const controls = decidingControls(result);
    if (allow !== expectedCerbosAllow(result)) {
      tally.disagreements.push({ input, cerbosAllow: allow, opaControls: controls });
    } else if (allow === result.allow) {
      if (allow) tally.agreeAllow++;
      else tally.agreeDeny++;
    } else {
      tally.notExpressible++;
      for (const c of controls)
        tally.notExpressibleByControl[c] = (tally.notExpressibleByControl[c] ?? 0) + 1;
    }
  });
  return tally;
}
