/**
 * What the caller's page remembers across a reload, per consultant, in this
 * tab's sessionStorage: the form's values and the resume token of the place
 * (a duplicated tab starts with a copy, and so can take the place over).
 */
export class Seat {
  constructor(slug) {
    this.key = `consult.call.${slug}`;
  }

  remember(data) {
    sessionStorage.setItem(this.key, JSON.stringify({ ...this.recall(), ...data }));
  }

  /** What was remembered, `{}` when nothing (or nothing readable) was. */
  recall() {
    try {
      return JSON.parse(sessionStorage.getItem(this.key)) || {};
    } catch {
      return {};
    }
  }

  get token() {
    return this.recall().token || null;
  }

  get audioOnly() {
    return Boolean(this.recall().audioOnly);
  }

  /** Keep the form's values for a next call; drop the place in the queue. */
  forget() {
    if (sessionStorage.getItem(this.key)) this.remember({ token: null });
  }
}
