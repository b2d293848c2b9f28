import type { NextConfig } from 'next';

const config: NextConfig = {
  // Next redirects /taskstream/ to /taskstream, taskstream redirects the other way: let taskstream decide.
  skipTrailingSlashRedirect: true,
};

export default config;
