'use client';
/**
 * Starts an ExampleTask and shows its events live with useTaskStream. The browser talks to the
 * route handler in app/taskstream/[...path]/route.ts (same origin: no CORS).
 */
import { useMemo, useState } from 'react';
import { createClient, type TaskJson } from 'taskstream/client';
import { useTaskStream } from 'taskstream/react';

export default function Page() {
  const client = useMemo(() => createClient({ baseUrl: '/taskstream' }), []);
  const [ref, setRef] = useState<TaskJson | null>(null);
  const [message, setMessage] = useState('hello from Next.js');
  const { status, events, progress, gap, error, cancel } = useTaskStream(ref, { client });

  async function start(): Promise<void> {
    const task = await client.create('examples/ExampleTask', { message, steps: 5, delay_ms: 300 });
    setRef(task);
  }

  return (
    <main>
      <h1>taskstream on Next.js</h1>
      <p>
        <input aria-label="message" value={message} onChange={(e) => setMessage(e.target.value)} />{' '}
        <button onClick={() => void start()}>Start</button>{' '}
        {ref && status === 'running' && <button onClick={() => void cancel('cancelled from the page')}>Cancel</button>}
      </p>
      {ref && (
        <>
          <p>
            Task #{ref.id}: <strong data-testid="status">{status}</strong>
            {progress !== null && <> — <progress value={progress} max={1} /> {Math.round(progress * 100)}%</>}
          </p>
          {gap && <p>Events {gap.fromSeq}–{gap.toSeq} were pruned by the server&apos;s retention.</p>}
          {error && <p role="alert">{error.message}</p>}
          <ol data-testid="events">
            {events.map((e) => (
              <li key={e.seq}>
                <code>{e.type}</code> {JSON.stringify(e.data)}
              </li>
            ))}
          </ol>
        </>
      )}
      <p>
        The <a href="/taskstream/">taskstream dashboard</a> is mounted here too.
      </p>
    </main>
  );
}
