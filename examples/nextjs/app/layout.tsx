import type { ReactNode } from 'react';

export const metadata = { title: 'taskstream on Next.js' };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: 'system-ui, sans-serif', margin: '2rem', maxWidth: '40rem' }}>{children}</body>
    </html>
  );
}
