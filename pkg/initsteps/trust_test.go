package initsteps_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prosody-pfe/prosody-pfe/internal/prosodytest"
	"github.com/prosody-pfe/prosody-pfe/pkg/initsteps"
	"github.com/prosody-pfe/prosody-pfe/pkg/settings"
)

// TreeProblems names whatever lets a user other than root change a tree:
// owner, group or other write, under it or above it, and through links.
func TestTreeProblems(t *testing.T) {
	uid, gid := prosodytest.IDs(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, base, tree string) // tree exists (0755, root's) unless setup removes it
		want  string                                // "" = no problem
	}{
		{name: "root's, 0755 and 0644", setup: func(*testing.T, string, string) {}},
		{name: "world-writable tree", setup: func(t *testing.T, _, tree string) { chmod(t, tree, 0o777) },
			want: "tree\" is writable by others"},
		{name: "group-writable file", setup: func(t *testing.T, _, tree string) {
			f := filepath.Join(tree, "profiles", "x", "profile.json")
			chmod(t, f, 0o664)
			chown(t, f, 0, gid)
		}, want: "profile.json\" is writable by group"},
		{name: "group-writable with root's group", setup: func(t *testing.T, _, tree string) {
			chmod(t, filepath.Join(tree, "profiles"), 0o775)
		}},
		{name: "a directory of prosody's", setup: func(t *testing.T, _, tree string) {
			chown(t, filepath.Join(tree, "profiles", "x"), uid, gid)
		}, want: "x\" is owned by uid"},
		{name: "the directory above is prosody's", setup: func(t *testing.T, base, _ string) { chown(t, base, uid, gid) },
			want: "is owned by uid"},
		{name: "sticky world-writable above is fine", setup: func(t *testing.T, base, _ string) { chmod(t, base, 0o777|os.ModeSticky) }},
		{name: "world-writable above without sticky", setup: func(t *testing.T, base, _ string) { chmod(t, base, 0o777) },
			want: "is writable by others"},
		{name: "missing tree, prosody's parent", setup: func(t *testing.T, base, tree string) {
			if err := os.RemoveAll(tree); err != nil {
				t.Fatal(err)
			}
			chown(t, base, uid, gid)
		}, want: "is owned by uid"},
		{name: "missing tree, root's parent", setup: func(t *testing.T, _, tree string) {
			if err := os.RemoveAll(tree); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "link to a file of prosody's", setup: func(t *testing.T, base, tree string) {
			target := filepath.Join(base, "elsewhere.json")
			if err := os.WriteFile(target, []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			chown(t, target, uid, gid)
			if err := os.Symlink(target, filepath.Join(tree, "profiles", "x", "linked.json")); err != nil {
				t.Fatal(err)
			}
		}, want: "linked.json\" is owned by uid"},
		// A link is judged by where it points and by who could replace it.
		{name: "link to root's file in prosody's directory", setup: func(t *testing.T, base, tree string) {
			spool := filepath.Join(base, "spool")
			target := writeFile(t, filepath.Join(spool, "profile.json"))
			chown(t, spool, uid, gid) // prosody can rename another file over it
			symlink(t, target, filepath.Join(tree, "profiles", "x", "linked.json"))
		}, want: "spool\" (through the link"},
		{name: "link to root's directory in prosody's directory", setup: func(t *testing.T, base, tree string) {
			spool := filepath.Join(base, "spool")
			writeFile(t, filepath.Join(spool, "feature", "feature.json"))
			chown(t, spool, uid, gid)
			symlink(t, filepath.Join(spool, "feature"), filepath.Join(tree, "features"))
		}, want: "spool\" (through the link"},
		{name: "a file of prosody's in a linked directory", setup: func(t *testing.T, base, tree string) {
			f := writeFile(t, filepath.Join(base, "shared", "feature", "feature.json"))
			chown(t, f, uid, gid)
			symlink(t, filepath.Join(base, "shared", "feature"), filepath.Join(tree, "features"))
		}, want: "feature.json\" (through the link"},
		{name: "the tree itself a link to a directory with a file of prosody's", setup: func(t *testing.T, base, tree string) {
			f := writeFile(t, filepath.Join(base, "real", "profiles", "y", "profile.json"))
			chown(t, f, uid, gid)
			if err := os.RemoveAll(tree); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(base, "real"), tree)
		}, want: "profile.json\" (through the link"},
		{name: "a link of prosody's", setup: func(t *testing.T, _, tree string) {
			link := filepath.Join(tree, "profiles", "x", "linked.json")
			symlink(t, "profile.json", link)
			if err := os.Lchown(link, uid, gid); err != nil {
				t.Fatal(err)
			}
		}, want: "linked.json\" is a link owned by uid"},
		{name: "a link cycle", setup: func(t *testing.T, _, tree string) {
			symlink(t, "..", filepath.Join(tree, "profiles", "up"))
		}},
		{name: "Kubernetes ConfigMap volume layout", setup: func(t *testing.T, _, tree string) {
			// The kubelet's AtomicWriter: files in ..<timestamp>, ..data a link to it, each
			// name a link through ..data, all root's; the volume root:fsGroup, setgid.
			chown(t, tree, 0, gid)
			chmod(t, tree, 0o755|os.ModeSetgid)
			writeFile(t, filepath.Join(tree, "..2024_01_02_03_04_05.1", "profiles", "y", "profile.json"))
			symlink(t, "..2024_01_02_03_04_05.1", filepath.Join(tree, "..data"))
			if err := os.RemoveAll(filepath.Join(tree, "profiles")); err != nil {
				t.Fatal(err)
			}
			symlink(t, "..data/profiles", filepath.Join(tree, "profiles"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base")
			tree := filepath.Join(base, "tree")
			if err := os.MkdirAll(filepath.Join(tree, "profiles", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, "profiles", "x", "profile.json"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, base, tree)
			problems, err := initsteps.TreeProblems(tree)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(problems, "\n")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("problems = %q, want %q", got, tc.want)
			}
		})
	}
}

// In production a custom directory others can write stops start-up with a
// configuration error naming the variable, the path and the fix; elsewhere it
// is a warning.
func TestCheckTreesRefusesInProduction(t *testing.T) {
	config, err := filepath.Abs(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(t.TempDir(), "custom")
	if err := os.Mkdir(custom, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, custom, 0o777)
	st := &settings.Settings{Environment: "production", ConfigDir: config, CustomDir: custom}
	_, err = initsteps.CheckTrees(st)
	if !initsteps.IsConfig(err) {
		t.Fatalf("production: err = %v, want a configuration error", err)
	}
	for _, want := range []string{"PROSODY_CUSTOM_DIR", `"` + custom + `" is writable by others`, "chmod -R go-w " + custom} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	st.Environment = "development"
	warnings, err := initsteps.CheckTrees(st)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "PROSODY_CUSTOM_DIR") {
		t.Fatalf("development: warnings %q, err %v; want one warning naming PROSODY_CUSTOM_DIR", warnings, err)
	}
	chmod(t, custom, 0o755)
	st.Environment = "production"
	if warnings, err := initsteps.CheckTrees(st); err != nil || len(warnings) != 0 {
		t.Fatalf("root's trees: warnings %q, err %v; want none", warnings, err)
	}
}

// The plan stage walks the trees' trust while it loads them: a tree the walk
// refuses still fails the stage (in production, exit 78 naming the
// variable), although the tree itself loads and plans.
func TestPlanStageRefusesAnUntrustedTreeItLoaded(t *testing.T) {
	config, err := filepath.Abs(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(t.TempDir(), "custom")
	if err := os.Mkdir(custom, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, custom, 0o777)
	s := initsteps.New(initsteps.Config{Env: []string{"PROSODY_ENVIRONMENT=production", "PROSODY_PROFILE=minimal",
		"PROSODY_DOMAIN=example.test", "PROSODY_CONFIG_DIR=" + config, "PROSODY_CUSTOM_DIR=" + custom,
		"PROSODY_DATA_DIR=" + t.TempDir(), "PROSODY_RUNTIME_DIR=" + t.TempDir()}})
	if _, err := initsteps.Run(t.Context(), []initsteps.Stage[*initsteps.State]{initsteps.ValidateEnv}, s, nil, nil); err != nil {
		t.Fatalf("validate-env: %v", err)
	}
	err = initsteps.Plan.Run(t.Context(), s)
	if !initsteps.IsConfig(err) || !strings.Contains(err.Error(), "PROSODY_CUSTOM_DIR") {
		t.Fatalf("plan stage on a custom dir others can write, production: err = %v, want a configuration error naming PROSODY_CUSTOM_DIR", err)
	}
	if s.Plan != nil {
		t.Errorf("the refused tree's plan was kept: %+v", s.Plan.Features)
	}
	chmod(t, custom, 0o755)
	if err := initsteps.Plan.Run(t.Context(), s); err != nil || s.Plan == nil {
		t.Fatalf("plan stage on root's trees: err = %v, plan %v; want a plan", err, s.Plan != nil)
	}
}

// writeFile writes "{}" to path, root's and 0644, making its directories
// (0755), and returns path.
func writeFile(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}
