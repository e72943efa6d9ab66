import { useEffect, useState } from "react";

/** Copies `text` to the clipboard; says so to screen readers too. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");

  useEffect(() => {
    if (state === "idle") return;
    const t = window.setTimeout(() => setState("idle"), 2000);
    return () => window.clearTimeout(t);
  }, [state]);

  async function copy() {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      setState("copied");
    } catch {
      setState("failed"); // plain http: the id stays selectable text
    }
  }

  return (
    <>
      <button
        type="button"
        className="secondary small-button"
        onClick={(e) => {
          e.stopPropagation();
          void copy();
        }}
        aria-label={label}
        data-testid="copy-button"
      >
        {state === "copied" ? "Copied" : "Copy"}
      </button>
      <span className="sr-only" aria-live="polite">
        {state === "copied" ? "Copied to the clipboard." : state === "failed" ? "Could not copy; select the text instead." : ""}
      </span>
    </>
  );
}
