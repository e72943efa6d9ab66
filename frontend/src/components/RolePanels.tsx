export function OpsFlowPlaceholder() {
  return (
    <section className="panel placeholder" aria-labelledby="flow-title" data-testid="ops-flow-placeholder">
      <h2 id="flow-title">Live flow</h2>
      <p className="muted">
        Not available yet: the flow view (stage timings and trace ids for every transfer) needs operations
        endpoints the API does not offer yet.
      </p>
    </section>
  );
}

export function BatchPanel() {
  return (
    <section className="panel placeholder" aria-labelledby="batch-title" data-testid="batch-unavailable">
      <h1 id="batch-title">Batch payments</h1>
      <p>
        <strong>Not available yet.</strong> Uploading a CSV of payments needs the batch API, which does not exist
        yet. Once it does, this page will take the file, show progress and each line’s outcome.
      </p>
    </section>
  );
}
