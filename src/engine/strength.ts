// Image-to-image strength arithmetic, in one place for the pipeline, the server's planner and the CLI.
// diffusers' get_timesteps: strength s over N steps starts the loop part-way and runs floor(N * s) of them.

/** Denoising steps that run for `steps` at `strength` (diffusers' init_timestep = min(N * s, N), floored). */
export function denoisingSteps(steps: number, strength: number): number {
  return Math.min(Math.floor(steps * strength), steps);
}

/**
 * The step count to ask for so that at least one denoising step runs (diffusers would run none when
 * steps * strength < 1): `steps` raised when needed, and how many of them actually run.
 */
export function stepsForStrength(steps: number, strength: number): { steps: number; effective: number } {
  const s = Math.max(steps, Math.ceil(1 / strength));
  return { steps: s, effective: denoisingSteps(s, strength) };
}
