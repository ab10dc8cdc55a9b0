/*
 * lua_linalg.c — mg.linalg.cholesky, mg.linalg.solve_triangular and
 * mg.cholesky_solve (ops_lapack.c), with PyTorch's names and options.
 *
 * mg.linalg is a sub-table of the module, as torch.linalg is;
 * cholesky_solve lives at the top level, as torch.cholesky_solve does.
 */
#include "lua_bind.h"

/* mg.linalg.cholesky(A [, {upper = false}]) */
static int f_cholesky(lua_State *L) {
  static const char *const known[] = {"upper", NULL};
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_check(L, 1);
  mgl_check_options(L, 2, known, "linalg.cholesky");
  int upper = mgl_optbool_field(L, 2, "upper", 0, "linalg.cholesky");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_cholesky(ctx, out, a, upper));
  return 1;
}

/* mg.linalg.solve_triangular(A, B, {upper = bool [, left = true,
 * unitriangular = false]}): upper has no default, as in PyTorch. */
static int f_solve_triangular(lua_State *L) {
  static const char *const known[] = {"upper", "left", "unitriangular", NULL};
  const char *op = "linalg.solve_triangular";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_check(L, 1), *b = mgl_check(L, 2);
  mgl_check_options(L, 3, known, op);
  if (lua_isnoneornil(L, 3) || lua_getfield(L, 3, "upper") == LUA_TNIL)
    return luaL_error(L, "%s: the option 'upper' is required (true when A "
                      "is upper triangular, false when lower), e.g. "
                      "mg.linalg.solve_triangular(A, B, {upper = false})", op);
  lua_settop(L, 3);
  int upper = mgl_optbool_field(L, 3, "upper", 0, op);
  int left = mgl_optbool_field(L, 3, "left", 1, op);
  int unit = mgl_optbool_field(L, 3, "unitriangular", 0, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_solve_triangular(ctx, out, a, b, upper, left, unit));
  return 1;
}

/* mg.cholesky_solve(B, L [, {upper = false}]) */
static int f_cholesky_solve(lua_State *L) {
  static const char *const known[] = {"upper", NULL};
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *b = mgl_check(L, 1), *l = mgl_check(L, 2);
  mgl_check_options(L, 3, known, "cholesky_solve");
  int upper = mgl_optbool_field(L, 3, "upper", 0, "cholesky_solve");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_cholesky_solve(ctx, out, b, l, upper));
  return 1;
}

const luaL_Reg mgl_linalg_functions[] = {
    {"cholesky", f_cholesky},
    {"solve_triangular", f_solve_triangular},
    {NULL, NULL}};

const luaL_Reg mgl_linalg_module_functions[] = {
    {"cholesky_solve", f_cholesky_solve}, {NULL, NULL}};
