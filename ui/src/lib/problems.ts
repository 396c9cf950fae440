// RFC 9457 problems from the API, and what a form shows of them.

export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
};

export class ApiError extends Error {
  constructor(public problem: Problem) {
    super(problem.detail || problem.title);
  }
}

/** Field name → message, for showing next to each input; nested fields keep their path. */
export function fieldErrors(problem: Problem | undefined): Record<string, string> {
  const byField: Record<string, string> = {};
  for (const error of problem?.errors ?? []) {
    byField[error.field] ??= error.message;
  }
  return byField;
}

/** A sentence for a banner: the detail, or the title, with the stable type's last part. */
export function describe(problem: Problem): string {
  const code = problem.type.split("/").pop() ?? "";
  const text = problem.detail || problem.title;
  return code && !["validation", "internal"].includes(code) ? `${text} (${code})` : text;
}
