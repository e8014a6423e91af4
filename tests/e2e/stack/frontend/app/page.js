// Rendered per request, so a check of / exercises the server, not a cached file.
export const dynamic = 'force-dynamic';

export default function Home() {
  return (
    <main>
      <h1>Neola</h1>
      <p>Rendered at {new Date().toISOString()}</p>
    </main>
  );
}
