/* Hooks: a module announces something (a resync, a job event) to whoever registered, without
 * importing them; views register, and the model's modules never import a view. */

/** {add(fn), run(...args)}: the registered functions, run in the order they came. */
export function hooks() {
  const fns = [];
  return {
    add: (fn) => { fns.push(fn); },
    run: (...args) => { for (const fn of fns) fn(...args); },
  };
}
