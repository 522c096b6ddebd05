/// <reference types="astro/client" />

interface Post {
  slug: string;
  title: string;
}

declare namespace App {
  /** What server.mjs passes to the handler: the stand-in CMS. */
  interface Locals {
    posts(): Promise<Post[]>;
  }
}
