/**
 * Which of several overlapping loads is the latest: only its answer may be shown. An
 * earlier load that answers late (the history's "From" date typed before its "To" date)
 * must not overwrite the newer answer.
 */
export function latestOnly() {
  let latest = 0;
  return {
    /** Starts a load; the function says whether it is still the latest. */
    begin(): () => boolean {
      const mine = ++latest;
      return () => mine === latest;
    },
  };
}
