/** The admin's HTML: the list of posts and the edit form. */
import type { Post } from './cms';
import { escapeHtml, page } from './views';

export interface Notice {
  text: string;
  error?: boolean;
}

export function adminListPage(posts: Post[], notice?: Notice): string {
  const rows = posts.map((post) => {
    const action = post.published ? 'unpublish' : 'publish';
    return `<tr><td><a href="/admin/posts/${post.slug}">${escapeHtml(post.title)}</a></td>
<td>${post.date}</td><td>${post.published ? `<a href="/blog/${post.slug}">published</a>` : 'unpublished'}</td>
<td><form class="inline" method="post" action="/admin/posts/${post.slug}/${action}">
<button type="submit">${action === 'publish' ? 'Publish' : 'Unpublish'}</button></form></td></tr>`;
  });
  return page(
    'Admin',
    `${noticeHtml(notice)}
<p>Saving a post calls the site's revalidate webhook, as a headless CMS would.</p>
<table><thead><tr><th>Title</th><th>Date</th><th>Status</th><th></th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`,
  );
}

export function adminEditPage(post: Post, notice?: Notice): string {
  return page(
    `Edit “${post.title}”`,
    `${noticeHtml(notice)}
<form method="post" action="/admin/posts/${post.slug}">
<p><label>Title<br><input type="text" name="title" value="${escapeHtml(post.title)}" required maxlength="200"></label></p>
<p><label>Body (a blank line between paragraphs)<br><textarea name="body" maxlength="20000">${escapeHtml(post.body)}</textarea></label></p>
<p><button type="submit">Save and publish</button> <a href="/admin/">Cancel</a></p>
</form>`,
  );
}

function noticeHtml(notice: Notice | undefined): string {
  if (notice === undefined) return '';
  return `<p class="notice${notice.error ? ' error' : ''}" role="status">${escapeHtml(notice.text)}</p>`;
}
