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

/** What a person is told: the problem's detail (or title) as a sentence, no codes. */
export function describe(problem: Problem): string {
  if (problem.status === 0) return "The server could not be reached. Check the connection and try again.";
  const text = (problem.detail || problem.title || "Something went wrong").trim();
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}
