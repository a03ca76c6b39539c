#!/usr/bin/env python3
"""Writes the Unity .meta file of every file and folder of clients/csharp that lacks one.

A package installed from a git URL is read-only to Unity, which ignores any asset without
its .meta file; so the package ships them. GUIDs are the MD5 of the asset's path in the
package, so a rerun writes the same files. Run it after adding a file to clients/csharp.
"""
import hashlib
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "csharp")
TAIL = "  userData: \n  assetBundleName: \n  assetBundleVariant: \n"

PLUGIN_WEBGL = """PluginImporter:
  externalObjects: {}
  serializedVersion: 2
  iconMap: {}
  executionOrder: {}
  defineConstraints: []
  isPreloaded: 0
  isOverridable: 0
  isExplicitlyReferenced: 0
  validateReferences: 1
  platformData:
  - first:
      Any: 
    second:
      enabled: 0
      settings: {}
  - first:
      WebGL: WebGL
    second:
      enabled: 1
      settings: {}
"""

MONO = """MonoImporter:
  externalObjects: {}
  serializedVersion: 2
  defaultReferences: []
  executionOrder: 0
  icon: {instanceID: 0}
"""


def importer(path):
    if os.path.isdir(path):
        return "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n"
    name = os.path.basename(path)
    if name.endswith(".cs"):
        return MONO
    if name.endswith(".asmdef"):
        return "AssemblyDefinitionImporter:\n  externalObjects: {}\n"
    if name.endswith(".jslib"):
        return PLUGIN_WEBGL
    if name == "package.json":
        return "PackageManifestImporter:\n  externalObjects: {}\n"
    if name.endswith((".md", ".json", ".txt")):
        return "TextScriptImporter:\n  externalObjects: {}\n"
    return "DefaultImporter:\n  externalObjects: {}\n"


def main():
    written = 0
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.endswith("~"))
        for name in sorted(dirnames) + sorted(filenames):
            if name.endswith(".meta") or name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            meta = path + ".meta"
            if os.path.exists(meta):
                continue
            rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
            guid = hashlib.md5(("longlink/clients/csharp/" + rel).encode()).hexdigest()
            with open(meta, "w", newline="\n") as f:
                f.write("fileFormatVersion: 2\nguid: %s\n%s%s" % (guid, importer(path), TAIL))
            written += 1
    print("wrote %d .meta files" % written, file=sys.stderr)


if __name__ == "__main__":
    main()
