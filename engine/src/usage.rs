//! Which containers use an image, so `image rm` / `image prune` can refuse to pull an image out
//! from under one.
//!
//! Contract with the container half of the engine: a container directory
//! `<root>/containers/<id>/` holds a file named `image` whose content is the id (config digest,
//! `sha256:…`) of the image the container was created from. The file is written before the
//! container's snapshot is mounted and removed with the container directory.

use std::fs;
use std::io;
use std::path::Path;

use crate::digest::Digest;

/// Name of the per-container file holding its image id.
pub const CONTAINER_IMAGE_FILE: &str = "image";

/// Ids of the containers whose image is `image`.
pub fn containers_using(root: &Path, image: &Digest) -> io::Result<Vec<String>> {
    let dir = root.join("containers");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let want = image.to_string();
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with('.') {
            // Removed (awaiting deletion) or not created yet: uses nothing.
            continue;
        }
        match fs::read_to_string(e.path().join(CONTAINER_IMAGE_FILE)) {
            Ok(s) if s.trim() == want => out.push(e.file_name().to_string_lossy().into_owned()),
            Ok(_) => {}
            Err(err)
                if err.kind() == io::ErrorKind::NotFound
                    || err.kind() == io::ErrorKind::NotADirectory => {}
            Err(err) => return Err(err),
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_containers_by_image_file() {
        let d = tempfile::tempdir().unwrap();
        let img = Digest::of(b"img");
        assert!(containers_using(d.path(), &img).unwrap().is_empty());
        for (id, content) in [
            ("c1", img.to_string()),
            ("c2", Digest::of(b"other").to_string()),
        ] {
            let p = d.path().join("containers").join(id);
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join(CONTAINER_IMAGE_FILE), format!("{content}\n")).unwrap();
        }
        fs::create_dir_all(d.path().join("containers/c3")).unwrap();
        assert_eq!(containers_using(d.path(), &img).unwrap(), vec!["c1"]);
    }
}
