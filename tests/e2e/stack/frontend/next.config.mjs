/** The reference's frontend: a standalone build served by `node server.js`. */
const nextConfig = { output: 'standalone', poweredByHeader: false };
export default nextConfig;
