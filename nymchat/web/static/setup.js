// The first run on the page: an identity, unlocking it, a name on a node (setup.* of
// nymchat/web/setup.py). Once the profile is ready the engine serves the next websocket:
// the page connects again.

import { hook, say, show } from "./dom.js";

const EXIT_PASSPHRASE = 3;
const FIRST_FIELD = {
  new: "setup-passphrase",
  locked: "setup-unlock-passphrase",
  unregistered: "setup-username",
};

export class Setup {
  constructor(rpc) {
    this.rpc = rpc;
    this.defaultNym = ""; // the nym-client offered: NAME stands for the name typed
    this.nymEdited = false; // typed over: the name no longer changes it
    this.wire();
  }

  /** The screen of `state` (`setup.state`'s answer). */
  show(state) {
    show(hook("setup"), true);
    show(hook("setup-loading"), false);
    for (const stage of ["new", "locked", "unregistered"]) {
      show(hook(`setup-${stage}`), state.stage === stage);
    }
    this.defaultNym = state.default_nym ?? "";
    if (state.stage === "unregistered") {
      if (state.username && !hook("setup-username").value) {
        hook("setup-username").value = state.username;
      }
      this.offerNym();
    }
    hook(FIRST_FIELD[state.stage])?.focus();
  }

  offerNym() {
    if (this.nymEdited) return;
    const name = hook("setup-username").value.trim().toLowerCase();
    hook("setup-nym").value = this.defaultNym.replace("NAME", name || "NAME");
  }

  /** Runs one step, then shows where that leaves the profile; `failed(error)` after
   * the error is shown. */
  async step(method, params, failed) {
    say("setup-error", null);
    const button = hook(`setup-${method.split(".")[1]}`);
    button.disabled = true;
    try {
      const state = await this.rpc.call(method, params); // (each answers the state)
      if (state.stage === "ready") this.rpc.restart();
      else this.show(state);
    } catch (error) {
      say("setup-error", error.message);
      failed?.(error);
    } finally {
      button.disabled = false;
    }
  }

  wire() {
    hook("setup-new").addEventListener("submit", (e) => {
      e.preventDefault();
      const passphrase = hook("setup-passphrase").value;
      if (passphrase !== hook("setup-passphrase-again").value) {
        say("setup-error", "the two passphrases differ: type them again");
        return;
      }
      this.step("setup.create", { passphrase });
    });

    hook("setup-locked").addEventListener("submit", (e) => {
      e.preventDefault();
      const field = hook("setup-unlock-passphrase");
      this.step("setup.unlock", { passphrase: field.value }, (error) => {
        if (error.exit === EXIT_PASSPHRASE) {
          field.value = "";
          field.focus();
        }
      });
    });

    hook("setup-username").addEventListener("input", () => this.offerNym());
    hook("setup-nym").addEventListener("input", () => {
      this.nymEdited = true;
    });

    hook("setup-unregistered").addEventListener("submit", (e) => {
      e.preventDefault();
      this.step("setup.register", {
        username: hook("setup-username").value.trim(),
        node: hook("setup-node").value.trim(),
        nym: hook("setup-nym").value.trim(),
      });
    });
  }
}
