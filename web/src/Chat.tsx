import { useState, type FormEvent } from 'react';
import { isParleyError } from '../../sdk/index.ts';
import { useJobStream, useParleyClient, useSubmitJob } from '../../sdk/react/index.ts';

/** A one-off chat job: submit, watch the tokens, cancel mid-stream. */
export function Chat() {
  const client = useParleyClient();
  const { submit, pending, error } = useSubmitJob();
  const [jobId, setJobId] = useState<string | null>(null);
  const stream = useJobStream<'llm.chat'>(jobId);
  const [cancelError, setCancelError] = useState<string>();

  async function send(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const job = await submit('llm.chat', {
      messages: [{ role: 'user', content: String(form.get('prompt')) }],
      options: { num_predict: Number(form.get('numPredict')) },
    }).catch(() => undefined);
    if (job) setJobId(job.id);
  }
  const running = jobId !== null && stream.status !== 'done' && stream.status !== 'error';
  const cancel = () => {
    if (!jobId) return;
    client.jobs.cancel(jobId).catch((err: unknown) => setCancelError(isParleyError(err) ? (err.detail ?? err.code) : String(err)));
  };

  return (
    <div className="chat card" data-testid="chat" data-job={jobId ?? ''} data-state={stream.state ?? stream.status}>
      <h3>One-off chat</h3>
      <form onSubmit={send}>
        <textarea name="prompt" rows={3} placeholder="Ask the model something" required />
        <label>
          Max tokens <input name="numPredict" type="number" min={1} max={2048} defaultValue={200} />
        </label>
        <div className="row">
          <button disabled={pending || running}>Send</button>
          <button type="button" className="danger" disabled={!running} onClick={cancel} data-testid="cancel-chat">
            Cancel
          </button>
        </div>
      </form>
      {jobId && (
        <div className="answer">
          <div className="muted" data-testid="chat-state">
            {stream.state ?? stream.status}
            {stream.usage
              ? ` · ${stream.usage.completionTokens} token${stream.usage.completionTokens === 1 ? '' : 's'}${stream.usage.estimated ? ' (estimated)' : ''}`
              : ''}
          </div>
          <div className="text" data-testid="chat-text">
            {stream.text}
          </div>
        </div>
      )}
      {(error || cancelError) && <p className="error">{error?.detail ?? error?.code ?? cancelError}</p>}
    </div>
  );
}
