/* server/api.h - the REST handlers, one per route (see docs/PROTOCOL.md).
 * Each takes a routed, authenticated request (r->org and, for repo routes,
 * r->repo are filled) and sets its response; returns 0.
 */
#ifndef MESA_API_H
#define MESA_API_H

#include "http.h"

int api_whoami(req_t *r);
int api_org_get(req_t *r);

int api_repos_list(req_t *r);
int api_repos_create(req_t *r);
int api_repo_get(req_t *r);
int api_repo_patch(req_t *r);
int api_repo_delete(req_t *r);

int api_changes_list(req_t *r);
int api_changes_create(req_t *r);
int api_change_get(req_t *r);
int api_change_patch(req_t *r);

int api_bookmarks_list(req_t *r);
int api_bookmarks_create(req_t *r);
int api_bookmarks_merge(req_t *r);
int api_bookmark_get(req_t *r);
int api_bookmark_patch(req_t *r);
int api_bookmark_delete(req_t *r);

int api_content_get(req_t *r);
int api_tree_get(req_t *r);
int api_blob_get(req_t *r);
int api_blob_upload(req_t *r);
int api_blobs_batch(req_t *r);

int api_events(req_t *r);

int api_meta_get(req_t *r);
int api_meta_patch(req_t *r);

#endif
