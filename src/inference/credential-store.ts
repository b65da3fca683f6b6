import { InferenceError } from "./errors.js";
import type { CloudCredentials } from "./upstream.js";

/**
 * The enclave's one slot for cloud credentials. They arrive only through SET_CREDENTIALS (sealed
 * to the enclave key), live only in memory, and are refused once expired: the parent's refresher
 * pushes new ones ahead of that moment.
 */
export class CredentialStore {
  #current: CloudCredentials | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  set(credentials: CloudCredentials): void {
    if (credentials.expiration.getTime() <= this.now()) {
      throw new InferenceError("CREDENTIALS_EXPIRED", "credentials: expiration is in the past");
    }
    this.#current = credentials;
  }

  /** The live credentials; NO_CREDENTIALS or CREDENTIALS_EXPIRED otherwise. */
  current(): CloudCredentials {
    const c = this.#current;
    if (!c)
      throw new InferenceError("NO_CREDENTIALS", "no credentials: the parent has not sent SET_CREDENTIALS");
    if (c.expiration.getTime() <= this.now()) {
      throw new InferenceError("CREDENTIALS_EXPIRED", "credentials expired and were not refreshed");
    }
    return c;
  }

  /** For the health probe: whether live credentials are held, and until when. */
  status(): { has_credentials: boolean; credentials_expire_at?: string } {
    const c = this.#current;
    if (!c || c.expiration.getTime() <= this.now()) return { has_credentials: false };
    return { has_credentials: true, credentials_expire_at: c.expiration.toISOString() };
  }
}
